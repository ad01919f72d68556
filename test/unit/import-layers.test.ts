/**
 * The import rule (scripts/import-layers.ts) must fail on each kind of wrong import — upward,
 * between siblings, across a fence, in a circle, from a file outside the table — and pass the
 * imports the layering allows. Fixtures are inline file maps; the real tree is only printed,
 * since it is being brought into line on another branch.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { checkImports, checkImportTree, formatFinding, importsOf, placementOf } from "../../scripts/import-layers.ts";

/** The findings for a set of inline files, one formatted line each. */
const check = (files: Record<string, string>) => checkImports(new Map(Object.entries(files))).map(formatFinding);

describe("import-layers finds the imports that break the layering", () => {
  it("an import up a layer", () => {
    const lines = check({
      "src/resp/decode.ts": 'export const a = 1;\nimport { Scope } from "../scope/scope.ts";\n',
      "src/scope/scope.ts": "export class Scope {}\n",
    });
    assert.deepEqual(lines, [
      "src/resp/decode.ts:2  imports src/scope/scope.ts  (layer 1 src/resp/ -> layer 3 src/scope/)",
    ]);
  });

  it("an import between the two sibling backends, either way", () => {
    const lines = check({
      "src/backends/pool/standalone.ts": 'import type { Topology } from "../cluster/topology.ts";\n',
      "src/backends/cluster/topology.ts": 'import { ketama } from "../pool/ketama.ts";\n',
      "src/backends/pool/ketama.ts": "export const ketama = 1;\n",
    });
    assert.deepEqual(lines, [
      "src/backends/cluster/topology.ts:1  imports src/backends/pool/ketama.ts  (layer 6 src/backends/cluster/ -> layer 6 src/backends/pool/, siblings)",
      "src/backends/pool/standalone.ts:1  imports src/backends/cluster/topology.ts  (layer 6 src/backends/pool/ -> layer 6 src/backends/cluster/, siblings)",
    ]);
  });

  it("two entries of layer 0 are siblings too", () => {
    assert.deepEqual(check({ "src/log.ts": 'import { x } from "./util/fifo.ts";\n', "src/util/fifo.ts": "" }), [
      "src/log.ts:1  imports src/util/fifo.ts  (layer 0 src/log.ts -> layer 0 src/util/, siblings)",
    ]);
  });

  it("a circle inside one entry, though each import alone is allowed", () => {
    const lines = check({
      "src/resp/a.ts": 'import { b } from "./b.ts";\n',
      "src/resp/b.ts": 'import type { A } from "./a.ts";\n',
    });
    assert.deepEqual(lines, ["circle: src/resp/a.ts -> src/resp/b.ts -> src/resp/a.ts"]);
  });

  it("a circle closed by a type-only import, a re-export or a type-position import()", () => {
    for (const closing of ['export * from "./a.ts";', 'export { type A } from "./a.ts";', 'let a: typeof import("./a.ts");']) {
      const lines = check({ "scripts/a.ts": 'import type { B } from "./b.ts";\n', "scripts/b.ts": `${closing}\n` });
      assert.deepEqual(lines, ["circle: scripts/a.ts -> scripts/b.ts -> scripts/a.ts"], closing);
    }
  });

  it("a knot of several files: the shortest loop, and the rest of the knot", () => {
    const lines = check({
      "scripts/a.ts": 'import "./b.ts";\n',
      "scripts/b.ts": 'import "./c.ts";\nimport "./d.ts";\n',
      "scripts/c.ts": 'import "./a.ts";\n',
      "scripts/d.ts": 'import "./b.ts";\n',
      "scripts/e.ts": 'import "./a.ts";\n', // leads into the knot, not part of it
    });
    assert.deepEqual(lines, [
      "circle: scripts/a.ts -> scripts/b.ts -> scripts/c.ts -> scripts/a.ts  (knot of 4 files, also: scripts/d.ts)",
    ]);
  });

  it("a file that imports itself", () => {
    assert.deepEqual(check({ "src/resp/a.ts": 'import * as self from "./a.ts";\n' }), ["circle: src/resp/a.ts -> src/resp/a.ts"]);
  });

  it("a file in src/ that no layer places", () => {
    const lines = check({ "src/newthing/x.ts": 'import { a } from "../resp/a.ts";\n', "src/resp/a.ts": "", "src/proxy/stray.ts": "" });
    assert.deepEqual(lines, [
      "src/newthing/x.ts  is in no layer  (give it an entry in LAYERS, scripts/import-layers.ts)",
      "src/proxy/stray.ts  is in no layer  (give it an entry in LAYERS, scripts/import-layers.ts)",
    ]);
  });

  it("src/ importing test/, scripts/ or adapters/", () => {
    const lines = check({
      "src/proxy/routing/router.ts": [
        'import { fake } from "../../../test/support/fake-client.ts";',
        'import type { X } from "../../../scripts/bench.ts";',
        'import { rt } from "../../../adapters/node/runtime.ts";',
      ].join("\n"),
    });
    assert.deepEqual(lines, [
      "src/proxy/routing/router.ts:1  imports test/support/fake-client.ts  (src/ -> test/)",
      "src/proxy/routing/router.ts:2  imports scripts/bench.ts  (src/ -> scripts/)",
      "src/proxy/routing/router.ts:3  imports adapters/node/runtime.ts  (src/ -> adapters/)",
    ]);
  });

  it("adapters/ importing test/ or scripts/, and scripts/ importing test/", () => {
    const lines = check({
      "adapters/node/runtime.ts": 'import "../../test/support/lazy.ts";\nimport "../../scripts/free-port.ts";\n',
      "scripts/bench.ts": 'import { launch } from "../test/support/launch.ts";\n',
    });
    assert.deepEqual(lines, [
      "adapters/node/runtime.ts:1  imports test/support/lazy.ts  (adapters/ -> test/)",
      "adapters/node/runtime.ts:2  imports scripts/free-port.ts  (adapters/ -> scripts/)",
      "scripts/bench.ts:1  imports test/support/launch.ts  (scripts/ -> test/)",
    ]);
  });
});

describe("import-layers lets the allowed imports through", () => {
  it("down the layers, within one entry, into packages, and the two harness CLIs into test/", () => {
    const lines = check({
      "src/main.ts": 'import { app } from "./app.ts";\nimport process from "node:process";\n',
      "src/app.ts": 'import { Scope } from "./scope/scope.ts";\nimport * as v from "valibot";\n',
      "src/scope/scope.ts": 'import { ScopeClosedError } from "../errors.ts";\n',
      "src/scope/io.ts": 'import { Scope } from "./scope.ts";\n',
      "src/proxy/session/client-session.ts": 'import { local } from "./local/local-commands.ts";\n',
      "src/proxy/session/local/local-commands.ts": 'import { Router } from "../../routing/router.ts";\n',
      "src/proxy/routing/router.ts": 'import type { Backend } from "../../backend/contract.ts";\n',
      "src/backend/contract.ts": "",
      "src/errors.ts": "// import { x } from '../proxy/server.ts' in a comment is no import\n",
      "adapters/node/main.ts": 'import { main } from "../../src/main.ts";\n',
      "scripts/start.ts": 'import { currentRuntime } from "../adapters/current.ts";\n',
      "scripts/churn.ts": 'import { runChurn } from "../test/support/churn.ts";\n',
      "scripts/sim.ts": 'import { explore } from "../test/sim/explorer.ts";\n',
    });
    assert.deepEqual(lines, []);
  });

  it("the most specific entry places a file", () => {
    assert.deepEqual(placementOf("src/proxy/session/local/client-command.ts"), { layer: 12, entry: "src/proxy/session/" });
    assert.deepEqual(placementOf("src/proxy/errors.ts"), { layer: 7, entry: "src/proxy/errors.ts" });
    assert.equal(placementOf("src/proxy/other.ts"), undefined);
    assert.equal(placementOf("src/resp"), undefined); // the folder entry matches files under it only
  });
});

describe("import-layers reads every import form", () => {
  it("static, re-export, side-effect, dynamic and type forms, with their lines", () => {
    const source = [
      'import a from "./a.ts";',
      'import type { B } from "./b.ts";',
      "import {",
      "  c,",
      '} from "./c.ts";',
      'export * from "./d.ts";',
      'export { e } from "./e.ts";',
      'import "./f.ts";',
      'const g = await import("./g.ts");',
      'type H = import("./h.ts").H;',
      "const i = await import(`./${name}.ts`);", // not a literal: skipped
      'const s = "from"; const t = Array.from("./x.ts"); // import("./y.ts")',
      'declare module "./z.ts" {}',
    ].join("\n");
    assert.deepEqual(importsOf(source), [
      { specifier: "./a.ts", line: 1 },
      { specifier: "./b.ts", line: 2 },
      { specifier: "./c.ts", line: 5 },
      { specifier: "./d.ts", line: 6 },
      { specifier: "./e.ts", line: 7 },
      { specifier: "./f.ts", line: 8 },
      { specifier: "./g.ts", line: 9 },
      { specifier: "./h.ts", line: 10 },
    ]);
  });
});

describe("import-layers on this repository", () => {
  it("prints what it finds (not asserted clean: the tree is being brought into line)", () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const { files, findings } = checkImportTree(root);
    assert.ok(files > 0);
    console.log(`import-layers: ${files} files, ${findings.length} finding(s)`);
    for (const finding of findings) console.log(`  ${formatFinding(finding)}`);
  });
});
