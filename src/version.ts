// Filled in at build time by scripts/build.ts (`bun build --define`); running from source
// falls back to the package version and "dev".
declare const CONVEYOR_BUILD_VERSION: string | undefined;
declare const CONVEYOR_BUILD_COMMIT: string | undefined;

export const VERSION: string = typeof CONVEYOR_BUILD_VERSION === "string" ? CONVEYOR_BUILD_VERSION : "0.0.0-dev";
export const COMMIT: string = typeof CONVEYOR_BUILD_COMMIT === "string" ? CONVEYOR_BUILD_COMMIT : "dev";
