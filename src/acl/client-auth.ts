/**
 * Authentication shared by every client session of a listener: the users in force (replaced
 * whole on a live change), the failed-attempt throttle, and the sessions logged in, so that a
 * change can close those whose login no longer holds (user removed or disabled, password
 * removed) and move the others to the new definition of their user.
 */
import type { Logger } from "../log.ts";
import { AuthThrottle } from "./throttle.ts";
import { Users, type AuthConfig, type Login } from "./users.ts";

/** A client session, as authentication sees it. */
export interface AuthSession {
  /** Who the client is logged in as; null until it authenticates (when authentication is required). */
  readonly login: Login | null;
  /** The client's user was redefined: its login holds, with the new permissions. */
  relogin(login: Login): void;
  /** The client's login no longer holds: close the connection (`reason` is logged). */
  revoke(reason: string): void;
}

export class ClientAuth {
  #users: Users;
  #source: string;
  readonly throttle: AuthThrottle;
  readonly #sessions = new Set<AuthSession>();
  readonly #log: Logger;

  constructor(config: AuthConfig, now: () => number, log: Logger) {
    this.#users = new Users(config);
    this.#source = fingerprint(config);
    this.throttle = new AuthThrottle(now);
    this.#log = log;
  }

  get users(): Users {
    return this.#users;
  }

  add(session: AuthSession): void {
    this.#sessions.add(session);
  }

  remove(session: AuthSession): void {
    this.#sessions.delete(session);
  }

  /**
   * Apply the authentication fields of a new configuration (nothing happens when they did not
   * change): new AUTHs check the new users; each logged-in session keeps its login if its user
   * still accepts it (taking the user's new permissions), else it is closed. Returns how many
   * were closed.
   */
  update(config: AuthConfig): number {
    const source = fingerprint(config);
    if (source === this.#source) return 0;
    this.#source = source;
    const users = (this.#users = new Users(config));
    let closed = 0;
    for (const session of [...this.#sessions]) {
      const login = session.login;
      if (login === null) {
        // Authentication is no longer required: the waiting client is `default`, as a new one would be.
        const open = users.initialLogin;
        if (open !== null) session.relogin(open);
        continue;
      }
      const user = users.get(login.user.name);
      const reason = user === undefined ? "removed" : !user.enabled ? "disabled" : !user.accepts(login.credential) ? "password removed" : null;
      if (reason === null) {
        session.relogin({ user: user!, credential: login.credential });
        continue;
      }
      closed++;
      this.#sessions.delete(session);
      session.revoke(`user '${login.user.name}' ${reason}`);
    }
    if (closed > 0) this.#log.info("closed clients whose login no longer holds", { clients: closed });
    return closed;
  }
}

function fingerprint(config: AuthConfig): string {
  return JSON.stringify([config.requirepass ?? null, config.users ?? {}]);
}
