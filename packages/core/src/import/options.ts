import { z } from "zod";
import { FreshrecError } from "../errors.js";

/** A command-line option whose value is unusable: names the option, the value and what it takes (exit status of a usage error). */
export class InvalidOptionError extends FreshrecError {
  constructor(
    readonly option: string,
    readonly value: string,
    expected: string,
  ) {
    super("usage", `${option} ${JSON.stringify(value)}: expected ${expected}`);
  }
}

const NUMBER_TEXT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** An option's text as a number checked by `schema`, or InvalidOptionError saying what was expected. */
export function numberOption(option: string, text: string, schema: z.ZodType<number>, expected: string): number {
  const parsed = NUMBER_TEXT.test(text.trim()) ? schema.safeParse(Number(text)) : undefined;
  if (!parsed?.success) throw new InvalidOptionError(option, text, expected);
  return parsed.data;
}

/** Positive engagement is `signal >= threshold`: any finite number (the store keeps the one it was created with). */
export const PositiveThresholdSchema = z.number().finite();

/** `--threshold X`: a finite number. */
export const parseThresholdOption = (text: string, option = "--threshold"): number =>
  numberOption(option, text, PositiveThresholdSchema, "a finite number (positive engagement is signal >= X)");
