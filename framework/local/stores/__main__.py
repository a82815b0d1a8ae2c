"""`python -m framework.local.stores KIND` (dynamodb, firestore, table or redis): start a local session
store and keep it until Ctrl-C, printing the variables that point `serve` and `invoke` at it, so that
a conversation outlives one `invoke --session`."""

from __future__ import annotations

import shlex
import sys
import threading

from framework.errors import LocalRunError
from framework.local import stores


def main(argv: list[str]) -> int:
    kind = argv[0] if argv else "dynamodb"
    try:
        with stores.start(kind) as local:
            print("# export these where you run serve or invoke (Ctrl-C stops the store and forgets it)")
            for name, value in sorted(local.env.items()):
                print(f"export {name}={shlex.quote(value)}", flush=True)
            threading.Event().wait()
    except LocalRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
