#!/bin/bash
# The seed's run.sh: start the external service (HTTP on 8080), calling the counter service at
# the URL given as the first argument.
cd "$(dirname "$0")" && exec python3 -u server.py "$@"
