import { UsageError } from "../../config/errors.ts";
import { writeKeyPair } from "../../config/signing-keys.ts";
import type { CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { printJson } from "../io.ts";

export const keygen: CommandSpec = {
  usage: "keygen",
  description: "Make a release signing key pair (Ed25519, PEM): FILE (private, mode 0600) and FILE.pub; prints the fingerprint",
  options: [{ flag: "--out <file>", description: "Where to write the private key; the public key goes to FILE.pub. Never overwrites" }],
  examples: ["conveyor keygen --out /etc/conveyor/release.key"],
  async run(_args, ctx) {
    const out = ctx.options.string("out");
    if (out === undefined || out === "") throw new UsageError("keygen needs --out FILE (the private key; the public key goes to FILE.pub)");
    const { fingerprint, publicPath } = await writeKeyPair(out);
    if (ctx.options.flag("json")) printJson(ctx.io, { privateKey: out, publicKey: publicPath, fingerprint });
    else {
      ctx.io.out(`wrote ${out} (private key: for CI only) and ${publicPath} (public key: the agents' trustedKeys)`);
      ctx.io.out(`fingerprint ${fingerprint}`);
    }
    return ExitCode.ok;
  },
};
