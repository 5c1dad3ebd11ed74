#!/bin/sh
# A runner that greets, loads, and then fails as $FAULT says.
echo '{"protocol_version":1,"runtime":"faulty","runtime_version":"1.0"}'
while read -r line; do
  case "$line" in
    *'"op":"load"'*) echo '{"ok":true,"samples":1,"load_ns":1}' ;;
    *'"op":"run"'*)
      case "$FAULT" in
        crash) echo "faulty runner: crashing on purpose" >&2; kill -SEGV $$ ;;
        hang) exec sleep 600 ;;
        *) echo '{"ok":true,"starts_ns":[1],"durations_ns":[1000],"peak_memory_bytes":1}' ;;
      esac ;;
    *'"op":"quit"'*) echo '{"ok":true}'; exit 0 ;;
    *) echo '{"ok":false,"error":"unknown request"}' ;;
  esac
done
