/**
 * The users clients authenticate as, compiled from the configuration (`requirepass`, `users`):
 * each with its password digests (SHA-256, as Redis's ACL keeps them; a clear-text password is
 * hashed when the configuration is loaded and never kept) and its `Permissions`. `requirepass`
 * is the password of the user `default`, who may do everything, as in Redis. With neither set,
 * no authentication is required and every client is `default` with no password (`nopass`).
 */
import { constantTimeEqual, sha256, sha256Hex, toHex } from "../util/sha256.ts";
import { ALL_PERMISSIONS, Permissions, type PermissionRules } from "./permissions.ts";

const encoder = new TextEncoder();

/** A password as the configuration keeps it: `#` and 64 lower-case hex digits. */
const DIGEST = /^#[0-9a-f]{64}$/;

/** How a client's login was proven: the digest of the password it gave, or `nopass`. */
export type Credential = string;
export const NOPASS: Credential = "nopass";

/**
 * A configured password as the configuration keeps it: `#<64 hex>` given as such (any case),
 * else the SHA-256 of the clear text. Never fails: an invalid `#...` is `passwordProblem`'s.
 */
export function hashPassword(entry: string): string {
  if (entry.startsWith("#")) return entry.toLowerCase();
  return `#${sha256Hex(encoder.encode(entry))}`;
}

/** Why a configured password is unusable, or null. */
export function passwordProblem(entry: string): string | null {
  if (entry.length === 0) return "expected a non-empty password";
  if (entry.startsWith("#") && !DIGEST.test(entry.toLowerCase())) return 'a password starting with "#" is a SHA-256 digest: "#" and 64 hex digits';
  return null;
}

/** One user of the configuration. */
export interface UserConfig extends PermissionRules {
  readonly enabled: boolean;
  /** `#<64 hex>` each (see `hashPassword`). */
  readonly passwords: readonly string[];
}

/** The configuration's authentication fields. */
export interface AuthConfig {
  readonly requirepass?: string | undefined;
  readonly users?: Readonly<Record<string, UserConfig>> | undefined;
}

export class User {
  readonly #digests: readonly Uint8Array[];
  constructor(
    readonly name: string,
    readonly enabled: boolean,
    /** `#<hex>` each, or none for a `nopass` user. */
    readonly passwords: readonly string[],
    readonly permissions: Permissions,
    readonly nopass = false,
  ) {
    this.#digests = passwords.map(fromHex);
  }

  /** Does `digest` (32 bytes) match one of the user's passwords? Every one is compared, in constant time. */
  matches(digest: Uint8Array): boolean {
    let found = false;
    for (const own of this.#digests) if (constantTimeEqual(own, digest)) found = true;
    return found;
  }

  /** Does the user still accept a login proven by `credential`? */
  accepts(credential: Credential): boolean {
    if (!this.enabled) return false;
    if (credential === NOPASS) return this.nopass;
    return this.passwords.includes(credential);
  }

  /** ACL LIST's line for the user; passwords are never shown (`#<redacted>` each). */
  describe(): string {
    const secrets = this.nopass ? ["nopass"] : this.passwords.map(() => "#<redacted>");
    return ["user", this.name, this.enabled ? "on" : "off", ...secrets, this.permissions.description].join(" ");
  }
}

/** A successful login: who, and by what proof (kept to tell, on a live change, whether it still holds). */
export interface Login {
  readonly user: User;
  readonly credential: Credential;
}

/** The implicit user when no authentication is configured: `default`, `nopass`, everything allowed. */
const OPEN_DEFAULT = new User("default", true, [], ALL_PERMISSIONS, true);

/** The login of every client when no authentication is configured. */
export const OPEN_LOGIN: Login = { user: OPEN_DEFAULT, credential: NOPASS };

export class Users {
  /** Clients must authenticate before any command but AUTH, HELLO and QUIT. */
  readonly required: boolean;
  readonly #users: ReadonlyMap<string, User>;

  constructor(config: AuthConfig) {
    const users = new Map<string, User>();
    if (config.requirepass !== undefined) users.set("default", new User("default", true, [config.requirepass], ALL_PERMISSIONS));
    for (const [name, user] of Object.entries(config.users ?? {})) {
      users.set(name, new User(name, user.enabled, user.passwords, new Permissions(user)));
    }
    this.required = users.size > 0;
    if (!this.required) users.set("default", OPEN_DEFAULT);
    this.#users = users;
  }

  /** The login every client starts with when no authentication is required, else null. */
  get initialLogin(): Login | null {
    return this.required ? null : OPEN_LOGIN;
  }

  get(name: string): User | undefined {
    return this.#users.get(name);
  }

  all(): User[] {
    return [...this.#users.values()];
  }

  /**
   * Check a user name and password. The password is hashed, and compared with every password of
   * the user in constant time, whether or not the user exists, so that the time taken says
   * nothing about which part was wrong. Null: no such user, disabled, or a wrong password.
   */
  authenticate(name: string, password: Uint8Array): Login | null {
    const digest = sha256(password);
    const user = this.#users.get(name);
    if (user === undefined) {
      DECOY.matches(digest);
      return null;
    }
    if (user.nopass) return user.enabled ? { user, credential: NOPASS } : null;
    const matched = user.matches(digest);
    if (!matched || !user.enabled) return null;
    return { user, credential: `#${toHex(digest)}` };
  }
}

/** Compared against when the user is unknown, so an unknown name costs what a known one does. */
const DECOY = new User("", false, [`#${"0".repeat(64)}`], ALL_PERMISSIONS);

function fromHex(entry: string): Uint8Array {
  const hex = entry.slice(1);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
