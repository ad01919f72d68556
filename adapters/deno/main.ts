/** Entry point on Deno: `deno run -A adapters/deno/main.ts` (or `npm run serve:deno`). */
import { main } from "../../src/main.ts";
import { denoHost } from "./host.ts";

await main(denoHost(Deno.env.toObject()));
