/** The fuzz targets, in the order a run goes through them. */
import type { Target } from "./harness.ts";
import { parserTarget } from "./parser-target.ts";
import { repliesTarget } from "./replies-target.ts";
import { slotsTarget } from "./slots-target.ts";
import { sessionTarget } from "./session-target.ts";

/** Each target's inputs are its own: a runner only hands an input back to the target that made it. */
export const TARGETS: readonly Target<unknown>[] = [parserTarget, repliesTarget, slotsTarget, sessionTarget];
