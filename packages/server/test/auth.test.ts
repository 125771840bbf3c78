import { describe, expect, it } from "vitest";
import { ValidationError } from "@freshrec/core";
import { Authenticator, parseApiKeys } from "../src/auth.js";
import type { HttpError } from "../src/errors.js";

describe("parseApiKeys", () => {
  it("reads unnamed and named entries with scopes", () => {
    const keys = parseApiKeys("reader-key-1:read,ingest; ops=admin-key-22:admin");
    expect(keys).toEqual([
      { name: "key1", key: "reader-key-1", scopes: ["read", "ingest"] },
      { name: "ops", key: "admin-key-22", scopes: ["admin"] },
    ]);
  });

  it("rejects unknown scopes and short keys without echoing the key", () => {
    expect(() => parseApiKeys("reader-key-1:read,write")).toThrow(ValidationError);
    try {
      parseApiKeys("ops=short:read");
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toContain("entry 1 (ops)");
      expect((err as Error).message).not.toContain("short\"");
    }
  });
});

describe("Authenticator", () => {
  const auth = new Authenticator(parseApiKeys("reader=reader-key-1:read;ops=admin-key-22:admin"), true);

  const status = (fn: () => unknown) => {
    try {
      fn();
      return 200;
    } catch (err) {
      return (err as HttpError).status;
    }
  };

  it("identifies bearer and bare keys", () => {
    expect(auth.identify("Bearer reader-key-1").name).toBe("reader");
    // The scheme is case-insensitive (RFC 7235).
    expect(auth.identify("bearer reader-key-1").name).toBe("reader");
    expect(auth.identify("BEARER \treader-key-1").name).toBe("reader");
    expect(auth.identify("admin-key-22").name).toBe("ops");
  });

  it("answers 401 for missing or unknown keys, including prefixes of real ones", () => {
    expect(status(() => auth.identify(undefined))).toBe(401);
    expect(status(() => auth.identify("Bearer reader-key-"))).toBe(401);
    expect(status(() => auth.identify("Bearer reader-key-12"))).toBe(401);
  });

  it("answers 403 for a missing scope; admin implies every scope", () => {
    const reader = auth.identify("Bearer reader-key-1");
    expect(status(() => Authenticator.require(reader, "read"))).toBe(200);
    expect(status(() => Authenticator.require(reader, "ingest"))).toBe(403);
    const ops = auth.identify("Bearer admin-key-22");
    for (const scope of ["read", "ingest", "admin"] as const) expect(status(() => Authenticator.require(ops, scope))).toBe(200);
  });

  it("lets everything through as an admin when disabled", () => {
    const open = new Authenticator([], false);
    expect(status(() => Authenticator.require(open.identify(undefined), "admin"))).toBe(200);
  });
});
