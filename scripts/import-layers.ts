/**
 * import-layers: every import in the repo points down. `src/` is a stack of layers (the table
 * below, lowest first); a file may import only from a strictly lower layer or from its own entry
 * of the table, so two entries on the same layer (siblings) may not import each other. Around
 * `src/` sit three areas with one-way fences (`BOUNDARIES`), and no import circle may form
 * inside `src/` or `scripts/`, type-only imports included: a circle makes load order matter and
 * keeps two files from being understood, tested or moved apart.
 *
 * A file's place is the most specific (longest) entry that matches it: an entry ending in `/`
 * matches everything under that folder, any other entry matches one file. A file in `src/` that
 * no entry matches is an error too, so a new folder has to be given a layer here.
 *
 * Findings print one per line:
 *
 *   src/upstream/conn.ts:12  imports src/proxy/routing/router.ts  (layer 5 src/upstream/ -> layer 9 src/proxy/routing/)
 *   src/admin/oops.ts  is in no layer  (give it an entry in LAYERS, scripts/import-layers.ts)
 *   circle: scripts/a.ts -> scripts/b.ts -> scripts/a.ts
 *
 * Run by `npm run lint:core` (scripts/lint-core.ts), and so by `npm test`.
 */
import { readFileSync } from "node:fs";
import { posix, relative, resolve, sep } from "node:path";
import { tsFiles } from "./ts-files.ts";
import { lineAndColumn, tokenize } from "./ts-tokenizer.ts";

/** One rung of `src/`: the entries on it, and what they hold. */
export interface Layer {
  /** Repo paths: a folder (ending in `/`, everything under it) or one file. */
  readonly entries: readonly string[];
  /** What lives here, in a few words. */
  readonly holds: string;
}

/** The layers of `src/`, lowest first; a layer's number is its index. */
export const LAYERS: readonly Layer[] = [
  /*  0 */ { entries: ["src/runtime.ts", "src/errors.ts", "src/log.ts", "src/util/", "src/testing/"], holds: "the Runtime port, shared errors, logging, leaf helpers, test fault switches" },
  /*  1 */ { entries: ["src/resp/"], holds: "RESP framing, parsing and encoding" },
  /*  2 */ { entries: ["src/commands/"], holds: "the command table and key extraction" },
  /*  3 */ { entries: ["src/scope/", "src/acl/", "src/metrics/"], holds: "lifetimes: scopes, their I/O and timing helpers; client users and their permissions; counters, the slow log and their exposition" },
  /*  4 */ { entries: ["src/backend/"], holds: "what the router needs from an upstream" },
  /*  5 */ { entries: ["src/upstream/"], holds: "pipelined connections to one Redis node" },
  /*  6 */ { entries: ["src/backends/cluster/", "src/backends/pool/"], holds: "the two backends, siblings: a Redis Cluster, a ketama pool" },
  /*  7 */ { entries: ["src/proxy/errors.ts"], holds: "the proxy's error replies" },
  /*  8 */ { entries: ["src/proxy/multi/"], holds: "commands spread over several shards: fan-out, split, merge" },
  /*  9 */ { entries: ["src/proxy/routing/"], holds: "routes and the router" },
  /* 10 */ { entries: ["src/proxy/own-conn/"], holds: "commands that need a connection of their own" },
  /* 11 */ { entries: ["src/proxy/pubsub/"], holds: "publish/subscribe" },
  /* 12 */ { entries: ["src/proxy/session/"], holds: "one client's session, and the commands it answers itself" },
  /* 13 */ { entries: ["src/proxy/server.ts"], holds: "the listener" },
  /* 14 */ { entries: ["src/config/"], holds: "configuration schemas and loading" },
  /* 15 */ { entries: ["src/control/"], holds: "the control plane: live configuration" },
  /* 16 */ { entries: ["src/admin/"], holds: "the admin HTTP app" },
  /* 17 */ { entries: ["src/workers/"], holds: "workers: the supervisor, the channel between workers, group-wide configuration" },
  /* 18 */ { entries: ["src/app.ts"], holds: "the assembled proxy" },
  /* 19 */ { entries: ["src/main.ts"], holds: "the entry point" },
];

/** The top-level areas that are fenced, and the areas each may not import from. */
export const BOUNDARIES: Readonly<Record<string, readonly string[]>> = {
  "src/": ["adapters/", "test/", "scripts/"],
  "adapters/": ["test/", "scripts/"],
  "scripts/": ["test/"],
};

/** Files allowed through one fence, each with its reason. */
export const BOUNDARY_EXCEPTIONS: ReadonlyArray<{ file: string; area: string; why: string }> = [
  // The two CLIs are front ends to harnesses that the test suites share; the harnesses stay in
  // test/ because the tests are their first users.
  { file: "scripts/churn.ts", area: "test/", why: "runs test/support/churn.ts's churn harness" },
  { file: "scripts/sim.ts", area: "test/", why: "runs test/sim/explorer.ts's simulation explorer" },
  { file: "scripts/fuzz.ts", area: "test/", why: "runs test/fuzz/'s targets, which test/unit/fuzz.test.ts runs a slice of" },
];

/** Areas whose files are read, and the ones within which circles are looked for. */
const WALKED = ["src", "scripts", "adapters"] as const;
const CIRCLE_AREAS = ["src/", "scripts/"] as const;

// The table is data: check it when the module loads, so a bad edit fails at once.
{
  const seen = new Set<string>();
  for (const layer of LAYERS) {
    for (const entry of layer.entries) {
      if (!entry.startsWith("src/")) throw new Error(`import-layers: LAYERS entry ${entry} is not under src/`);
      if (seen.has(entry)) throw new Error(`import-layers: LAYERS entry ${entry} appears twice`);
      seen.add(entry);
    }
  }
}

/** Where a file sits in the table. */
export interface Placement {
  layer: number;
  entry: string;
}

/** One import that breaks the rules, one file outside the table, or one circle. */
export type ImportFinding =
  | { kind: "upward" | "sibling"; file: string; line: number; target: string; from: Placement; to: Placement }
  | { kind: "boundary"; file: string; line: number; target: string; fromArea: string; toArea: string }
  | { kind: "unplaced"; file: string }
  /** `cycle` is one loop, first file repeated at the end; `knot` every file of the component. */
  | { kind: "circle"; cycle: string[]; knot: string[] };

/** One import statement (or `import(...)`) found in a file. */
export interface ImportSite {
  specifier: string;
  line: number;
}

/**
 * The module specifiers `source` names: `import ... from "x"`, `export ... from "x"`,
 * `import "x"`, `import("x")` (a literal argument only), type-only forms included. Comments and
 * strings elsewhere are not mistaken for imports.
 */
export function importsOf(source: string): ImportSite[] {
  const tokens = tokenize(source);
  const sites: ImportSite[] = [];
  for (let k = 1; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind !== "string") continue;
    const prev = tokens[k - 1]!;
    const isIdent = (at: number, name: string) => tokens[at]?.kind === "ident" && tokens[at]!.value === name;
    const staticForm = isIdent(k - 1, "from") || isIdent(k - 1, "import");
    // import("x") or import("x", options); a template with `${}` is not a literal and is skipped.
    const next = tokens[k + 1]?.value;
    const dynamicForm = prev.value === "(" && isIdent(k - 2, "import") && (next === ")" || next === ",");
    if (staticForm || dynamicForm) sites.push({ specifier: t.value, line: lineAndColumn(source, t.offset).line });
  }
  return sites;
}

/**
 * The repo path a relative specifier names, or undefined for a package or builtin. When the
 * plain path is not a known file, the extension forms TypeScript resolves are tried.
 */
export function resolveImport(file: string, specifier: string, known: ReadonlySet<string>): string | undefined {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return undefined;
  const plain = posix.normalize(posix.join(posix.dirname(file), specifier));
  if (known.has(plain)) return plain;
  const candidates = [plain.replace(/\.js$/, ".ts"), plain.replace(/\.mjs$/, ".mts"), `${plain}.ts`, `${plain}.d.ts`, `${plain}/index.ts`];
  return candidates.find((c) => known.has(c)) ?? plain;
}

/** The entry of LAYERS that places `file` (the longest match), or undefined. */
export function placementOf(file: string): Placement | undefined {
  let best: Placement | undefined;
  LAYERS.forEach((layer, index) => {
    for (const entry of layer.entries) {
      const matches = entry.endsWith("/") ? file.startsWith(entry) : file === entry;
      if (matches && (best === undefined || entry.length > best.entry.length)) best = { layer: index, entry };
    }
  });
  return best;
}

/** The top-level area of a repo path (`src/`, `test/`, ...), or the path itself at the root. */
function areaOf(file: string): string {
  const slash = file.indexOf("/");
  return slash < 0 ? file : file.slice(0, slash + 1);
}

/**
 * Check a set of files, keyed by repo path (forward slashes) with their source text. Imports of
 * files not in the set are still judged by their path (so a `test/` import is caught without
 * reading `test/`); only files in the set take part in circles and need a layer.
 */
export function checkImports(files: ReadonlyMap<string, string>): ImportFinding[] {
  const known = new Set(files.keys());
  const findings: ImportFinding[] = [];
  const edges = new Map<string, Set<string>>();

  for (const file of [...known].sort()) {
    const from = placementOf(file);
    const fromArea = areaOf(file);
    if (fromArea === "src/" && from === undefined) findings.push({ kind: "unplaced", file });
    const targets = new Set<string>();
    edges.set(file, targets);
    for (const { specifier, line } of importsOf(files.get(file)!)) {
      const target = resolveImport(file, specifier, known);
      if (target === undefined) continue;
      targets.add(target);
      const toArea = areaOf(target);
      const excepted = BOUNDARY_EXCEPTIONS.some((e) => e.file === file && e.area === toArea);
      if (BOUNDARIES[fromArea]?.includes(toArea) && !excepted) {
        findings.push({ kind: "boundary", file, line, target, fromArea, toArea });
        continue;
      }
      const to = placementOf(target);
      // An unplaced file is reported once, as itself; its edges cannot be judged.
      if (from === undefined || to === undefined || to.entry === from.entry) continue;
      if (to.layer > from.layer) findings.push({ kind: "upward", file, line, target, from, to });
      else if (to.layer === from.layer) findings.push({ kind: "sibling", file, line, target, from, to });
    }
  }

  const inCircleAreas = (f: string) => CIRCLE_AREAS.some((area) => f.startsWith(area));
  const graph = new Map<string, string[]>();
  for (const [file, targets] of edges) {
    if (inCircleAreas(file)) graph.set(file, [...targets].filter((t) => known.has(t) && inCircleAreas(t)).sort());
  }
  for (const knot of stronglyConnected(graph)) {
    const selfLoop = knot.length === 1 && graph.get(knot[0]!)!.includes(knot[0]!);
    if (knot.length > 1 || selfLoop) findings.push({ kind: "circle", cycle: shortestLoop(graph, knot), knot });
  }
  return findings;
}

/** Read `src/`, `scripts/` and `adapters/` under `root` and check them. */
export function checkImportTree(root: string): { files: number; findings: ImportFinding[] } {
  const files = new Map<string, string>();
  for (const area of WALKED) {
    for (const path of tsFiles(resolve(root, area))) {
      files.set(relative(root, path).split(sep).join("/"), readFileSync(path, "utf8"));
    }
  }
  return { files: files.size, findings: checkImports(files) };
}

/** One line for a finding (the format in this module's header). */
export function formatFinding(f: ImportFinding): string {
  const layer = (p: Placement) => `layer ${p.layer} ${p.entry}`;
  switch (f.kind) {
    case "upward":
      return `${f.file}:${f.line}  imports ${f.target}  (${layer(f.from)} -> ${layer(f.to)})`;
    case "sibling":
      return `${f.file}:${f.line}  imports ${f.target}  (${layer(f.from)} -> ${layer(f.to)}, siblings)`;
    case "boundary":
      return `${f.file}:${f.line}  imports ${f.target}  (${f.fromArea} -> ${f.toArea})`;
    case "unplaced":
      return `${f.file}  is in no layer  (give it an entry in LAYERS, scripts/import-layers.ts)`;
    case "circle": {
      const loop = `circle: ${f.cycle.join(" -> ")}`;
      const rest = f.knot.filter((file) => !f.cycle.includes(file));
      return rest.length === 0 ? loop : `${loop}  (knot of ${f.knot.length} files, also: ${rest.join(", ")})`;
    }
  }
}

/** Tarjan's strongly connected components; each sorted, listed by their first file. */
function stronglyConnected(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** The shortest loop through the knot's first file, staying inside the knot (breadth first). */
function shortestLoop(graph: ReadonlyMap<string, readonly string[]>, knot: readonly string[]): string[] {
  const start = knot[0]!;
  const members = new Set(knot);
  const parent = new Map<string, string>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head]!;
    for (const w of graph.get(v) ?? []) {
      if (w === start) {
        const path = [start];
        for (let at = v; at !== start; at = parent.get(at)!) path.splice(1, 0, at);
        return [...path, start];
      }
      if (members.has(w) && !parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start]; // unreachable for a real knot
}
