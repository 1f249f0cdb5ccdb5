// Asking before what cannot be undone. The plan is printed first; the steps that cannot be undone
// are listed again and confirmed: on a terminal by a question, without one only by --yes (a script
// must say that it means it). The prompt is injected, so tests drive both paths.

import { createInterface } from "node:readline/promises";
import { EXIT_FAILURE, EXIT_USAGE, UserError } from "../errors.ts";

/** Asks one question and returns the answer; null when there is no terminal to ask on. */
export type Prompt = ((question: string) => Promise<string>) | null;

export async function confirmSteps(steps: readonly string[], yes: boolean, prompt: Prompt): Promise<void> {
  if (steps.length === 0 || yes) return;
  const list = steps.map((s) => `  ${s}`).join("\n");
  if (prompt === null) {
    throw new UserError(
      `nothing changed: this cannot be undone and there is no terminal to ask on:\n${list}\npass --yes to go ahead (or --dry-run, where there is one, to only see the plan)`,
      EXIT_USAGE,
    );
  }
  const answer = (await prompt(`This cannot be undone:\n${list}\nGo ahead? [y/N]`)).trim().toLowerCase();
  if (answer !== "y" && answer !== "yes") throw new UserError("not confirmed; nothing changed", EXIT_FAILURE);
}

/** A prompt on the terminal when stdin and stdout are one, else null. */
export function terminalPrompt(): Prompt {
  return process.stdin.isTTY === true && process.stdout.isTTY === true ? askLine : null;
}

/**
 * One line from the terminal. Not consola.prompt: under Bun 1.4.5 its text prompt returns undefined
 * whatever is typed (seen through a pty), so a plain readline question it is.
 */
export async function askLine(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const closed = new Promise<never>((_, reject) => rl.once("close", () => reject(new UserError("cancelled: no answer"))));
  try {
    return await Promise.race([rl.question(`${question} `), closed]);
  } finally {
    rl.close();
  }
}
