/**
 * The commands slotgate answers per client (HELLO, AUTH, SELECT, CLIENT, INFO) against a fake
 * client: every edge case with Redis's exact error text, replies in the client's protocol, and
 * failed commands that change nothing. The texts are Redis 7.0.15's (checked against a real
 * server by test/integration/resp3.test.ts), CLIENT SETINFO's are Redis 7.2's (7.0 lacks it).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { localHandler, parseInteger } from "../../src/proxy/session/local/local-commands.ts";
import type { ConnectionInfo, LocalContext } from "../../src/proxy/session/local/context.ts";
import { ReplyReader } from "../../src/resp/reply-reader.ts";
import { Users, type Login } from "../../src/acl/users.ts";
import { errorReply } from "../../src/resp/replies.ts";

const encoder = new TextEncoder();
const latin1 = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join("");

class FakeClient implements LocalContext {
  clientName: string | null = null;
  protocol: 2 | 3 = 2;
  libName = "";
  libVer = "";
  replies: string[] = [];
  closed = false;
  connection: ConnectionInfo = { remoteAddress: "127.0.0.1", remotePort: 50123, localAddress: "127.0.0.1", localPort: 6380, ageMs: 12_999, idleMs: 2_500 };
  login: Login | null;
  constructor(readonly id = 7, readonly directory = new Users({})) {
    this.login = directory.initialLogin;
  }
  get authRequired(): boolean {
    return this.directory.required;
  }
  users(): Users {
    return this.directory;
  }
  authenticate(user: string | null, password: Uint8Array): Uint8Array | null {
    const login = this.directory.authenticate(user ?? "default", password);
    if (login === null) return errorReply("invalid username-password pair or user is disabled.", "WRONGPASS");
    this.login = login;
    return null;
  }
  reply(frame: Uint8Array): void {
    // Every local reply is exactly one well-formed frame.
    const frames: Uint8Array[] = [];
    new ReplyReader((f) => frames.push(f)).push(frame);
    assert.equal(frames.length, 1, `one frame: ${JSON.stringify(latin1(frame))}`);
    assert.equal(frames[0]!.length, frame.length, "the frame is the whole reply");
    this.replies.push(latin1(frame));
  }
  replyAndClose(frame: Uint8Array): void {
    this.reply(frame);
    this.closed = true;
  }
  info(): string {
    return "# Server\r\nredis_version:7.0.0\r\n";
  }
  connectionInfo(): ConnectionInfo {
    return this.connection;
  }
  /** Run one command (space-separated words, or an explicit argument list); its reply. */
  run(command: string | (string | Uint8Array)[]): string {
    const words = typeof command === "string" ? command.split(" ") : command;
    const args = words.map((w) => (typeof w === "string" ? encoder.encode(w) : w));
    const handler = localHandler(new TextDecoder().decode(args[0]).toUpperCase());
    assert.ok(handler, `${words[0]} is answered locally`);
    const before = this.replies.length;
    handler(this, args);
    assert.equal(this.replies.length, before + 1, "one reply per command");
    return this.replies.at(-1)!;
  }
}

/** HELLO's reply as Redis builds it, from its fields, in either protocol. */
function hello(protocol: 2 | 3, id: number, replyProtocol: 2 | 3 = protocol): string {
  const bulk = (s: string) => `$${s.length}\r\n${s}\r\n`;
  const fields = [
    ["server", bulk("redis")], ["version", bulk("7.0.0")], ["proto", `:${protocol}\r\n`], ["id", `:${id}\r\n`],
    ["mode", bulk("standalone")], ["role", bulk("master")], ["modules", "*0\r\n"],
  ];
  const header = replyProtocol === 3 ? `%${fields.length}\r\n` : `*${fields.length * 2}\r\n`;
  return header + fields.map(([k, v]) => bulk(k!) + v).join("");
}

const err = (text: string) => `-${text}\r\n`;

describe("HELLO", () => {
  it("without a version answers in the current protocol and switches nothing", () => {
    const client = new FakeClient(7);
    assert.equal(client.run("HELLO"), hello(2, 7));
    assert.equal(client.protocol, 2);
    client.protocol = 3;
    assert.equal(client.run("HELLO"), hello(3, 7));
    assert.equal(client.protocol, 3);
  });

  it("HELLO 3 switches to RESP3 and answers a %7 map; HELLO 2 switches back with a flat array", () => {
    const client = new FakeClient(42);
    const reply = client.run("HELLO 3");
    assert.ok(reply.startsWith("%7\r\n"), "a RESP3 map of 7 pairs");
    assert.equal(reply, hello(3, 42));
    assert.equal(client.protocol, 3);
    assert.equal(client.run("HELLO 2"), hello(2, 42));
    assert.equal(client.protocol, 2);
  });

  it("an unsupported version is NOPROTO; a non-integer one is Redis's integer error; neither switches", () => {
    const client = new FakeClient();
    for (const version of ["0", "1", "4", "-1", "9223372036854775807"]) {
      assert.equal(client.run(["HELLO", version]), err("NOPROTO unsupported protocol version"), `HELLO ${version}`);
    }
    for (const version of ["abc", "2.0", "03", "+3", "-0", " 3", "", "9223372036854775808", "３"]) {
      assert.equal(client.run(["HELLO", version]), err("ERR Protocol version is not an integer or out of range"), `HELLO '${version}'`);
    }
    assert.equal(client.run("HELLO SETNAME x"), err("ERR Protocol version is not an integer or out of range"));
    assert.equal(client.protocol, 2, "still RESP2");
  });

  it("options: unknown or incomplete ones are syntax errors naming the option as given", () => {
    const client = new FakeClient();
    assert.equal(client.run("HELLO 3 FOO"), err("ERR Syntax error in HELLO option 'FOO'"));
    assert.equal(client.run("HELLO 3 setName"), err("ERR Syntax error in HELLO option 'setName'"));
    assert.equal(client.run("HELLO 3 AUTH default"), err("ERR Syntax error in HELLO option 'AUTH'"));
    assert.equal(client.run("HELLO 3 auth"), err("ERR Syntax error in HELLO option 'auth'"));
    assert.equal(client.protocol, 2, "no failed HELLO switched");
    assert.equal(client.clientName, null, "no failed HELLO named the client");
    // Redis 7.0 applies each option where it appears: a name before the failing option stays.
    assert.equal(client.run("HELLO 3 SETNAME ok EXTRA"), err("ERR Syntax error in HELLO option 'EXTRA'"));
    assert.equal(client.clientName, "ok");
    assert.equal(client.protocol, 2, "but the protocol does not switch");
  });

  it("SETNAME names the client (the last one wins, empty clears) and is validated like CLIENT SETNAME", () => {
    const client = new FakeClient(3);
    assert.equal(client.run("HELLO 3 SETNAME first setname second"), hello(3, 3));
    assert.equal(client.clientName, "second");
    assert.equal(client.run(["HELLO", "2", "SETNAME", "a b"]), err("ERR Client names cannot contain spaces, newlines or special characters."));
    assert.equal(client.protocol, 3, "the failed HELLO 2 did not switch");
    assert.equal(client.clientName, "second", "nor rename");
    // The name is checked where it appears: before a later unknown option.
    assert.equal(client.run(["HELLO", "3", "SETNAME", "a\nb", "FOO"]), err("ERR Client names cannot contain spaces, newlines or special characters."));
    assert.equal(client.run(["HELLO", "3", "SETNAME", ""]), hello(3, 3));
    assert.equal(client.clientName, null);
  });

  it("AUTH: the default user has no password, so any password is accepted; other users are WRONGPASS", () => {
    const client = new FakeClient(5);
    assert.equal(client.run("HELLO 3 AUTH default anything SETNAME app"), hello(3, 5));
    assert.equal(client.clientName, "app");
    assert.equal(client.run("HELLO 2 AUTH alice secret SETNAME other"), err("WRONGPASS invalid username-password pair or user is disabled."));
    assert.equal(client.run("HELLO 2 AUTH Default x"), err("WRONGPASS invalid username-password pair or user is disabled."), "user names are case-sensitive");
    assert.equal(client.protocol, 3, "a refused AUTH switches nothing");
    assert.equal(client.clientName, "app", "and renames nothing");
    // Options are checked in order: whichever fails first is the answer.
    assert.equal(client.run(["HELLO", "3", "SETNAME", "a b", "AUTH", "alice", "x"]), err("ERR Client names cannot contain spaces, newlines or special characters."));
    assert.equal(client.run(["HELLO", "3", "AUTH", "alice", "x", "SETNAME", "a b"]), err("WRONGPASS invalid username-password pair or user is disabled."));
    assert.equal(client.run("HELLO 3 AUTH alice x FOO"), err("WRONGPASS invalid username-password pair or user is disabled."));
    assert.equal(client.run("HELLO 3 AUTH default x FOO"), err("ERR Syntax error in HELLO option 'FOO'"));
  });
});

describe("AUTH", () => {
  it("answers as a Redis whose default user has no password", () => {
    const client = new FakeClient();
    assert.equal(client.run("AUTH"), err("ERR wrong number of arguments for 'auth' command"));
    assert.equal(
      client.run("AUTH secret"),
      err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
    );
    assert.equal(client.run("AUTH default secret"), "+OK\r\n");
    assert.equal(client.run("AUTH alice secret"), err("WRONGPASS invalid username-password pair or user is disabled."));
    assert.equal(client.run("AUTH a b c"), err("ERR syntax error"));
  });
});

describe("SELECT", () => {
  it("0 is fine, any other database is Redis Cluster's error, and the index is parsed as Redis parses it", () => {
    const client = new FakeClient();
    assert.equal(client.run("SELECT 0"), "+OK\r\n");
    for (const db of ["1", "-1", "15", "2147483647", "-2147483648"]) {
      assert.equal(client.run(["SELECT", db]), err("ERR SELECT is not allowed in cluster mode"), `SELECT ${db}`);
    }
    for (const db of ["x", "00", "-0", "+1", "1.0", " 0", ""]) {
      assert.equal(client.run(["SELECT", db]), err("ERR value is not an integer or out of range"), `SELECT '${db}'`);
    }
    for (const db of ["2147483648", "-2147483649", "99999999999"]) {
      assert.equal(client.run(["SELECT", db]), err("ERR value is out of range, value must between -2147483648 and 2147483647"), `SELECT ${db}`);
    }
    assert.equal(client.run("SELECT"), err("ERR wrong number of arguments for 'select' command"));
    assert.equal(client.run("SELECT 0 1"), err("ERR wrong number of arguments for 'select' command"));
  });
});

describe("CLIENT", () => {
  it("checks the arity of each subcommand with Redis's wording", () => {
    const client = new FakeClient();
    assert.equal(client.run("CLIENT"), err("ERR wrong number of arguments for 'client' command"));
    const cases: [string, string][] = [
      ["CLIENT SETNAME", "client|setname"],
      ["CLIENT setname a b", "client|setname"],
      ["CLIENT GETNAME x", "client|getname"],
      ["CLIENT ID x", "client|id"],
      ["CLIENT INFO x", "client|info"],
      ["CLIENT SETINFO lib-name", "client|setinfo"],
      ["CLIENT SETINFO lib-name a b", "client|setinfo"],
      ["CLIENT NO-EVICT", "client|no-evict"],
      ["CLIENT no-evict on off", "client|no-evict"],
      ["CLIENT HELP x", "client|help"],
    ];
    for (const [command, name] of cases) assert.equal(client.run(command), err(`ERR wrong number of arguments for '${name}' command`), command);
  });

  it("SETNAME validates like Redis, GETNAME answers the protocol's null when unnamed", () => {
    const client = new FakeClient();
    assert.equal(client.run("CLIENT GETNAME"), "$-1\r\n");
    assert.equal(client.run("CLIENT SETNAME worker-1"), "+OK\r\n");
    assert.equal(client.run("CLIENT GETNAME"), "$8\r\nworker-1\r\n");
    for (const bad of ["a b", "a\nb", "tab\t", "caf\u00e9", "\u0000", "\u007f"]) {
      assert.equal(client.run(["CLIENT", "SETNAME", bad]), err("ERR Client names cannot contain spaces, newlines or special characters."), JSON.stringify(bad));
    }
    assert.equal(client.clientName, "worker-1", "a refused name keeps the old one");
    assert.equal(client.run("CLIENT SETNAME !~"), "+OK\r\n", "printable ASCII from '!' to '~'");
    assert.equal(client.run(["CLIENT", "SETNAME", ""]), "+OK\r\n");
    assert.equal(client.clientName, null, "an empty name clears it");
    client.protocol = 3;
    assert.equal(client.run("CLIENT GETNAME"), "_\r\n");
  });

  it("ID is the connection's id", () => {
    assert.equal(new FakeClient(1234).run("CLIENT ID"), ":1234\r\n");
  });

  it("INFO is one line in Redis's format: a bulk string in RESP2, a txt verbatim string in RESP3", () => {
    const client = new FakeClient(9);
    client.run("CLIENT SETNAME app");
    client.run("CLIENT SETINFO LIB-NAME my-lib");
    client.run("CLIENT SETINFO lib-ver 1.2.3");
    const line =
      "id=9 addr=127.0.0.1:50123 laddr=127.0.0.1:6380 fd=-1 name=app age=12 idle=2 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 " +
      "qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|info user=default " +
      "redir=-1 resp=2 lib-name=my-lib lib-ver=1.2.3\n";
    assert.equal(client.run("CLIENT INFO"), `$${line.length}\r\n${line}\r\n`);
    client.protocol = 3;
    const line3 = line.replace("resp=2", "resp=3");
    assert.equal(client.run("client info"), `=${line3.length + 4}\r\ntxt:${line3}\r\n`);
  });

  it("INFO writes IPv6 addresses in brackets, as Redis does", () => {
    const client = new FakeClient(1);
    client.connection = { remoteAddress: "::1", remotePort: 40000, localAddress: "::", localPort: 6380, ageMs: 0, idleMs: 0 };
    assert.match(client.run("CLIENT INFO"), / addr=\[::1\]:40000 laddr=\[::\]:6380 /);
  });

  it("SETINFO accepts LIB-NAME and LIB-VER (any case, empty clears) and rejects the rest with Redis 7.2's texts", () => {
    const client = new FakeClient();
    assert.equal(client.run("CLIENT SETINFO Lib-Name node-redis"), "+OK\r\n");
    assert.equal(client.run("CLIENT SETINFO LIB-VER 5.12.1"), "+OK\r\n");
    assert.deepEqual([client.libName, client.libVer], ["node-redis", "5.12.1"]);
    assert.equal(client.run("CLIENT SETINFO lib-foo x"), err("ERR Unrecognized option 'lib-foo'"));
    assert.equal(client.run(["CLIENT", "SETINFO", "Lib-Name", "a b"]), err("ERR Lib-Name cannot contain spaces, newlines or special characters."));
    assert.equal(client.run(["CLIENT", "SETINFO", "lib-ver", "1\n2"]), err("ERR lib-ver cannot contain spaces, newlines or special characters."));
    assert.deepEqual([client.libName, client.libVer], ["node-redis", "5.12.1"], "refused values change nothing");
    assert.equal(client.run(["CLIENT", "SETINFO", "lib-name", ""]), "+OK\r\n");
    assert.equal(client.libName, "");
  });

  it("NO-EVICT takes on or off in any case; anything else is a syntax error", () => {
    const client = new FakeClient();
    for (const mode of ["on", "OFF", "On"]) assert.equal(client.run(["CLIENT", "NO-EVICT", mode]), "+OK\r\n", mode);
    assert.equal(client.run("CLIENT NO-EVICT maybe"), err("ERR syntax error"));
  });

  it("HELP lists the served subcommands as simple strings, in either protocol", () => {
    for (const protocol of [2, 3] as const) {
      const client = new FakeClient();
      client.protocol = protocol;
      const help = client.run("CLIENT HELP");
      const lines = help.split("\r\n").slice(1, -1);
      assert.equal(help.slice(0, help.indexOf("\r\n")), `*${lines.length}`);
      assert.ok(lines.every((line) => line.startsWith("+")), "every line a simple string");
      assert.equal(lines[0], "+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
      for (const sub of ["GETNAME", "ID", "INFO", "NO-EVICT (ON|OFF)", "SETINFO <option> <value>", "SETNAME <name>", "HELP"]) {
        assert.ok(lines.includes(`+${sub}`), `HELP mentions ${sub}`);
      }
    }
  });

  it("subcommands Redis has but slotgate does not serve are refused plainly; unknown ones get Redis's error", () => {
    const client = new FakeClient();
    for (const sub of ["LIST", "KILL", "PAUSE", "TRACKING", "REPLY", "UNBLOCK", "CACHING", "GETREDIR", "TRACKINGINFO", "UNPAUSE"]) {
      assert.equal(client.run(["CLIENT", sub.toLowerCase(), "x"]), err(`ERR unsupported command 'CLIENT ${sub}'`), sub);
    }
    assert.equal(client.run("CLIENT foo"), err("ERR unknown subcommand 'foo'. Try CLIENT HELP."));
    assert.equal(client.run("CLIENT MAINT_NOTIFICATIONS ON"), err("ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP."));
  });
});

describe("parseInteger", () => {
  it("accepts what Redis's string2ll accepts, within 64 bits", () => {
    assert.equal(parseInteger("0"), 0n);
    assert.equal(parseInteger("-9223372036854775808"), -(2n ** 63n));
    assert.equal(parseInteger("9223372036854775807"), 2n ** 63n - 1n);
    for (const bad of ["", "-", "-0", "01", "+1", " 1", "1 ", "1e3", "0x10", "9223372036854775808", "-9223372036854775809", "12345678901234567890"]) {
      assert.equal(parseInteger(bad), null, JSON.stringify(bad));
    }
  });
});
