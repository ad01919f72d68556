/**
 * lint-core must catch every banned runtime use in src/ and must not be fooled by comments,
 * strings, template text, regex literals or member names. Fixtures are inline strings.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { lintCore, lintSource } from "../../scripts/lint-core.ts";

const FILE = "src/proxy/example.ts";
/** The offending tokens found in `source`. */
const tokens = (source: string, file = FILE) => lintSource(source, file).map((finding) => finding.token);

describe("lint-core catches direct runtime use", () => {
  const cases: Array<[string, string]> = [
    ["setTimeout(() => {}, 10);", "setTimeout"],
    ["const t = setInterval(tick, 5);", "setInterval"],
    ["setImmediate(run);", "setImmediate"],
    ["clearTimeout(handle);", "clearTimeout"],
    ["clearInterval(handle);", "clearInterval"],
    ["clearImmediate(handle);", "clearImmediate"],
    ["const now = Date.now();", "Date"],
    ["const d = new Date();", "Date"],
    ["let when: Date | undefined;", "Date"],
    ["const t0 = performance.now();", "performance"],
    ["const r = Math.random();", "Math.random"],
    ["const s = AbortSignal.timeout(100);", "AbortSignal.timeout"],
    ["const env = process.env.HOME;", "process"],
    ["if (typeof Deno !== 'undefined') {}", "Deno"],
    ["Bun.serve({ fetch });", "Bun"],
    ["globalThis.setTimeout(run, 1);", "globalThis.setTimeout"],
    ["globalThis['setTimeout'](run, 1);", `globalThis["setTimeout"]`],
    ["const r = globalThis.Math.random();", "globalThis.Math.random"],
    ["import { readFileSync } from 'node:fs';", `import "node:fs"`],
    ["import * as net from \"net\";", `import "net"`],
    ["import dns from 'dns';", `import "dns"`],
    ["import os from 'os';", `import "os"`],
    ["import { spawn } from 'child_process';", `import "child_process"`],
    ["import { readFile } from 'fs/promises';", `import "fs/promises"`],
    ["import { scheduler } from 'timers/promises';", `import "timers/promises"`],
    ["import type { Socket } from 'node:net';", `import "node:net"`],
    ["import 'node:process';", `import "node:process"`],
    ["export { Buffer } from 'buffer';", `import "buffer"`],
    ["const m = await import('node:http');", `import "node:http"`],
    ["import { EventEmitter } from 'events';", `import "events"`],
    ["import { serve } from 'bun';", `import "bun"`],
    ["import Parser from 'redis-parser';", `import "redis-parser"`],
    ["const x = `${Date.now()} ms`;", "Date"],
  ];
  for (const [source, expected] of cases) {
    it(`flags ${expected} in: ${source}`, () => {
      assert.deepEqual(tokens(source), [expected]);
    });
  }

  it("flags both the require( call and the builtin it loads", () => {
    assert.deepEqual(tokens("const fs = require('fs');"), ["require(", `import "fs"`]);
  });

  it("flags a banned name imported from a banned module as well as the import", () => {
    assert.deepEqual(tokens("import { setTimeout as sleep } from 'node:timers/promises';"), [
      "setTimeout",
      `import "node:timers/promises"`,
    ]);
  });

  it("reports file, line and column", () => {
    const findings = lintSource("const a = 1;\n  const b = Date.now();\n", FILE);
    assert.deepEqual(findings, [{ file: FILE, line: 2, column: 13, token: "Date" }]);
  });

  it("lintCore walks a directory and reports repo-relative paths", () => {
    const root = mkdtempSync(join(tmpdir(), "slotgate-lint-"));
    try {
      mkdirSync(join(root, "src", "deep"), { recursive: true });
      writeFileSync(join(root, "src", "ok.ts"), "export const a = 1;\n");
      writeFileSync(join(root, "src", "deep", "bad.ts"), "// fine\nexport const t = performance.now();\n");
      const result = lintCore(join(root, "src"), root);
      assert.equal(result.files, 2);
      assert.deepEqual(result.findings, [{ file: "src/deep/bad.ts", line: 2, column: 18, token: "performance" }]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("lint-core ignores what is not a runtime use", () => {
  const clean: Array<[string, string]> = [
    ["a JSDoc comment", "/** Unlike setTimeout, Date.now() or process.exit, this is pure. */\nexport const x = 1;"],
    ["a line comment", "const x = 1; // setTimeout(fn) and Math.random() would be wrong here"],
    ["a block comment", "/* import fs from 'node:fs'; require('fs') */ const y = 2;"],
    ["string literals", `const a = "setTimeout"; const b = 'Date.now()'; const c = "process.env";`],
    ["template text", "const msg = `use setTimeout or Date here ${count} times, Math.random`;"],
    ["a regex literal with quotes", "const re = /\"setTimeout'/g; const later = 1;"],
    ["a division that looks like a regex", "const r = a / b / c; const d = (x) / 2;"],
    ["member names on other objects", "runtime.setTimer(5, fn); scope.process(x); conn.setTimeout; this.Date = 1;"],
    ["declared property and parameter names", "interface P { process: (x: number) => void; readonly performance: number; Date?: string }\nfunction f(process: number) { return { setTimeout: 1 }; }"],
    ["the runtime port's method names", "const t = rt.now(); rt.setTimer(10, cb); rt.random(); rt.defer(cb);"],
    ["queueMicrotask", "queueMicrotask(() => done());"],
    ["Math and AbortSignal otherwise", "const m = Math.max(1, 2); const s: AbortSignal = controller.signal; AbortSignal.abort();"],
    ["imports of the project's own modules and allowed packages", "import { x } from './fs.ts'; import * as v from 'valibot'; import type { Runtime } from '../runtime.ts';"],
    ["a variable named require without a call", "const requireAuth = true; obj.require('x');"],
    ["a hashbang", "#!/usr/bin/env node\nconst a = 1;"],
    ["an escaped quote in a string", `const s = "say \\"setTimeout\\" twice"; const t = 'it\\'s Date';`],
    ["nested templates", "const s = `a ${`b ${c} setTimeout`} Date`;"],
  ];
  for (const [what, source] of clean) {
    it(`ignores ${what}`, () => {
      assert.deepEqual(tokens(source), []);
    });
  }

  it("allows redis-parser only in src/resp/request-parser.ts", () => {
    const source = "import Parser from 'redis-parser';";
    assert.deepEqual(tokens(source, "src/resp/request-parser.ts"), []);
    assert.deepEqual(tokens(source, "src/resp/other.ts"), [`import "redis-parser"`]);
    // The exception covers redis-parser only, not other banned forms in that file.
    assert.deepEqual(tokens("import 'node:buffer';", "src/resp/request-parser.ts"), [`import "node:buffer"`]);
  });

  it("still sees code after tricky comments and strings", () => {
    const source = [
      "/* a comment with a 'quote */",
      'const s = "// not a comment";',
      "const t = `${'}'}`;",
      "const u = /[/]/;",
      "setTimeout(f);",
    ].join("\n");
    assert.deepEqual(lintSource(source, FILE).map((f) => `${f.line}:${f.token}`), ["5:setTimeout"]);
  });
});
