// The command line of the measuring scripts: `--name=value` options, `--name` flags and the
// arguments without dashes.

/** The value of `--name=value`, else `fallback`. */
export const option = (name, fallback) => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : arg.slice(name.length + 3);
};

/** Whether `--name` was given. */
export const flag = (name) => process.argv.includes(`--${name}`);

/** The arguments that are not options or flags. */
export const positional = () => process.argv.slice(2).filter((a) => !a.startsWith("--"));
