/**
 * What a locally answered command (./local-commands.ts, ./client-command.ts) may see and do of
 * the client that sent it, and the rule both apply to client names.
 */
import { errorReply } from "../../../resp/replies.ts";
import type { Login, Users } from "../../../acl/users.ts";
import type { Slowlog } from "../../../metrics/slowlog.ts";

/** Where a client is connected from and to, and since when: what CLIENT INFO reports. */
export interface ConnectionInfo {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Milliseconds since the connection was accepted. */
  readonly ageMs: number;
  /** Milliseconds since the client last sent bytes. */
  readonly idleMs: number;
}

/** What a local command may do to the client that sent it. */
export interface LocalContext {
  readonly id: number;
  clientName: string | null;
  /** The protocol `HELLO` chose: 2 (Redis's default) or 3. */
  protocol: 2 | 3;
  /** CLIENT SETINFO's library name and version ("" until set). */
  libName: string;
  libVer: string;
  /** Queue a reply, in order with the client's other replies. */
  reply(frame: Uint8Array): void;
  /** Reply, then close the connection once every earlier reply is written. */
  replyAndClose(frame: Uint8Array): void;
  /** Text of the INFO reply (server-wide). */
  info(): string;
  /** The connection's addresses and times, read when CLIENT INFO runs. */
  connectionInfo(): ConnectionInfo;
  /** Who the client is logged in as: null before it authenticates (when authentication is required). */
  readonly login: Login | null;
  /** Whether a password is configured at all (AUTH's one-argument form needs one). */
  readonly authRequired: boolean;
  /** The users in force (ACL LIST). */
  users(): Users;
  /** Check credentials (user null: `default`) and log in on success; the error to answer, or null. */
  authenticate(user: string | null, password: Uint8Array): Uint8Array | null;
  /** The proxy's slow log (SLOWLOG); null when metrics are off. Optional for test contexts. */
  slowlog?(): Slowlog | null;
}

export type LocalHandler = (context: LocalContext, args: Uint8Array[]) => void;

export const INVALID_NAME = errorReply("Client names cannot contain spaces, newlines or special characters.");

/** Redis's rule for client names and library attributes: printable ASCII, no space ('!' to '~'); empty is allowed. */
export function isValidName(value: Uint8Array): boolean {
  for (let i = 0; i < value.length; i++) if (value[i]! < 0x21 || value[i]! > 0x7e) return false;
  return true;
}
