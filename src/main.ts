import { run } from "./cli/run.ts";

// The CLI owns every exit code; process.exit also ends any socket a failed command left open.
process.exit(await run(process.argv.slice(2)));
