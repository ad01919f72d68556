#!/usr/bin/env node
// The `slotgate` command on Node: loads the TypeScript entry point through tsx.
import { tsImport } from "tsx/esm/api";

await tsImport("../adapters/node/main.ts", import.meta.url);
