import * as v from "valibot";

/** App and host ids: safe as znode names, shell words and file names. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Debian and semver versions fit; shell metacharacters never do. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+~:-]{0,127}$/;

const NAME_RULE = "letters, digits, '.', '_' or '-', starting with a letter or digit, at most 128";
const VERSION_RULE = "letters, digits, '.', '_', '+', '~', ':' or '-', starting with a letter or digit, at most 128";

export const AppName = v.pipe(v.string(), v.regex(NAME_PATTERN, `app name must be ${NAME_RULE}`));
export const HostId = v.pipe(v.string(), v.regex(NAME_PATTERN, `host id must be ${NAME_RULE}`));
export const GroupName = v.pipe(v.string(), v.regex(NAME_PATTERN, `group name must be ${NAME_RULE}`));
export const Version = v.pipe(v.string(), v.regex(VERSION_PATTERN, `version must be ${VERSION_RULE}`));
