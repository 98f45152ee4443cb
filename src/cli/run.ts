import { COMMIT, VERSION } from "../version.ts";

// Placeholder until the CLI lands.
export async function run(argv: string[]): Promise<number> {
  if (argv.includes("--version")) {
    process.stdout.write(`conveyor ${VERSION} (${COMMIT})\n`);
    return 0;
  }
  return 2;
}
