# Prints something on each stream, then fails.
echo "compiling build-fails $NUA_APP_VERSION"
echo "error: missing dependency libexample" >&2
exit 1
