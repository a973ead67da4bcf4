"""moto's server (as `moto_server` starts it) answering one request at a time.

DynamoDB applies a conditional write atomically. moto 5.2.1's server runs each request on a
thread of its own with no lock around its tables, so two conditional writes at once can both
pass their condition (a compare-and-swap race loses an increment), and a transaction can fail
copying a table another request is changing. Answering one request at a time, its conditions
hold as DynamoDB's do. Arguments: the host and the port.
"""
import os
import signal
import sys

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
run_simple(host, port, DomainDispatcherApplication(create_backend_app), threaded=False)
