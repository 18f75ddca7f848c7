"""Start moto's server with one request at a time.

`moto_server` handles requests on threads without isolating transactions, so two concurrent
conditional writes can both pass their conditions - something DynamoDB never allows. Serving
requests one by one restores DynamoDB's serializable semantics for the contract tests.

Usage: python tests/moto_serial.py PORT
"""

import sys

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

if __name__ == "__main__":
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, app, threaded=False)
