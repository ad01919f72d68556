/** Entry point on Bun: `bun adapters/bun/main.ts` (or `npm run serve:bun`). */
import { main } from "../../src/main.ts";
import { bunHost } from "./host.ts";

await main(bunHost(Bun.env));
