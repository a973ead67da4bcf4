"""Normalizes and hashes user_data values with Meta's official Business SDK.

Input on stdin: a JSON array of [key, value]. Output on stdout: a JSON array with, for each
input, the SDK's SHA-256 hex digest or null when the SDK refuses the value."""
import json
import sys

from facebook_business.adobjects.serverside.normalize import Normalize

results = []
for key, value in json.load(sys.stdin):
    try:
        results.append(Normalize.normalize_field(key, value))
    except (TypeError, ValueError):
        results.append(None)
json.dump(results, sys.stdout)
