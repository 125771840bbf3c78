/** A response body that is already JSON text (rendered ahead of time), written as is instead of re-serialised. */
export class JsonText {
  constructor(readonly text: string) {}
}
