/**
 * cac (through mri) turns option values that look like numbers into numbers ("1.10" → 1.1,
 * "007" → 7), so string-typed options are read back from argv exactly as typed. cac still does
 * the structural work (known options, required arguments, help).
 */
export class RawOptions {
  constructor(
    private readonly argv: readonly string[],
    private readonly booleans: Record<string, unknown>,
  ) {}

  /** The last value given for `--name` (as `--name v` or `--name=v`), exactly as typed. */
  string(name: string): string | undefined {
    let value: string | undefined;
    const flag = `--${name}`;
    for (let i = 0; i < this.argv.length; i++) {
      const token = this.argv[i] ?? "";
      if (token === "--") break;
      if (token === flag) value = this.argv[i + 1];
      else if (token.startsWith(`${flag}=`)) value = token.slice(flag.length + 1);
    }
    return value;
  }

  /** A boolean flag; `name` as typed ("rollback-on-failure"), looked up as cac stores it. */
  flag(name: string): boolean {
    const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    return this.booleans[camel] === true;
  }
}
