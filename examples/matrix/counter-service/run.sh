#!/bin/bash
# The seed's run.sh: start the counter service (HTTP on 8080).
cd "$(dirname "$0")" && exec python3 -u server.py
