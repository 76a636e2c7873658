# Runs once per release, in the release folder: records when it was built.
echo "building hello $NUA_APP_VERSION"
date -u +%Y-%m-%dT%H:%M:%SZ > built-at
