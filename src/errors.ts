// A user mistake ends with one precise message and a distinct exit code, never a stack trace.
// 78 is EX_CONFIG: the units set RestartPreventExitStatus=78 so systemd stops a crash loop.

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 64;
export const EXIT_CONFIG = 78;
/** Another daemon instance holds the lock */
export const EXIT_LOCKED = 75;

export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = "UserError";
  }
}

export class ConfigError extends UserError {
  constructor(message: string) {
    super(message, EXIT_CONFIG);
    this.name = "ConfigError";
  }
}
