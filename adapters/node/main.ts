/** Entry point on Node: `node --import tsx adapters/node/main.ts` (or `npm run serve:node`). */
import { main } from "../../src/main.ts";
import { nodeHost } from "./host.ts";

await main(nodeHost());
