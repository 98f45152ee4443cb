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
    return this.strings(name).at(-1);
  }

  /** Every value given for a repeatable `--name`, in order, exactly as typed. */
  strings(name: string): string[] {
    const values: string[] = [];
    const flag = `--${name}`;
    for (let i = 0; i < this.argv.length; i++) {
      const token = this.argv[i] ?? "";
      if (token === "--") break;
      if (token === flag) {
        const value = this.argv[i + 1];
        if (value !== undefined) values.push(value);
      } else if (token.startsWith(`${flag}=`)) values.push(token.slice(flag.length + 1));
    }
    return values;
  }

  /** A boolean flag; `name` as typed ("rollback-on-failure"), looked up as cac stores it. */
  flag(name: string): boolean {
    const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    return this.booleans[camel] === true;
  }
}
