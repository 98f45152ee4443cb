import type { AppSpec } from "../../src/config/app-spec.ts";

/** A valid app spec with only the required fields, for tests that decode, encode or break one. */
export const SAMPLE_SPEC: Readonly<AppSpec> = {
  version: "1.0",
  rolloutId: "rabc12345",
  slots: 2,
  getVersionCmd: "cat VERSION",
  deployCmd: "deploy %(version)s",
  groups: [],
  maxFailures: 0,
  deployTimeoutSec: 600,
  paused: false,
  updatedAt: "2026-11-24T20:00:00.000Z",
  updatedBy: "ci",
};
