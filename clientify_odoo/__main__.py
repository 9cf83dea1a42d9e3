"""`python -m clientify_odoo` is the same as the `clientify-odoo` command."""

import sys

from clientify_odoo.cli import main

sys.exit(main())
