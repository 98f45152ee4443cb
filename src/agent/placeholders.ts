/** Values a command template may refer to; all validated names/versions (or empty). */
export interface PlaceholderValues {
  app: string;
  version: string;
  host: string;
  previous: string;
}

/** POSIX single-quoting: the value is always one literal word to the shell. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

const PLACEHOLDER = /%\((id|version|host|previous)\)s/g;

/**
 * Substitutes `%(id)s`, `%(version)s`, `%(host)s`, `%(previous)s` shell-quoted. Nothing else in
 * the template is touched: `${Version}` and any other shell syntax stays as written.
 */
export function renderCommand(template: string, values: PlaceholderValues): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = name === "id" ? values.app : name === "version" ? values.version : name === "host" ? values.host : values.previous;
    return shellQuote(value);
  });
}

/** The same values as environment variables, for scripts that prefer them. */
export function commandEnv(values: PlaceholderValues): Record<string, string> {
  return {
    CONVEYOR_APP: values.app,
    CONVEYOR_VERSION: values.version,
    CONVEYOR_HOST: values.host,
    CONVEYOR_PREVIOUS_VERSION: values.previous,
  };
}
