// env returns a required environment variable, or ends the script with a
// failure line the Go test shows: every script takes its inputs this way.
export function env(name) {
  const v = process.env[name]
  if (!v) {
    console.error(`FAIL - environment variable ${name} is required`)
    process.exit(1)
  }
  return v
}
