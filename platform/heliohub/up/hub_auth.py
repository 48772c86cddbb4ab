"""How people log in to the one-machine hub: each with a password of their own (JupyterHub's NativeAuthenticator).

People sign up at ``/hub/signup`` with a name and a password of their own; names the operator listed
(``UpSettings.users``) may log in at once, any other name only once an admin has approved it at
``/hub/authorize``. Repeated wrong passwords lock a name out for a while. The admin's account is made here, before
the hub answers anyone, with the password ``heliohub up`` printed (or ``HELIOHUB_ADMIN_PASSWORD``), so nobody can
sign up under the admin's name first.
"""

from __future__ import annotations

import logging

from nativeauthenticator import NativeAuthenticator
from traitlets import Unicode

log = logging.getLogger(__name__)


class PlatformAuthenticator(NativeAuthenticator):
    """NativeAuthenticator whose admins exist, with the operator's password, from the hub's first start."""

    admin_password = Unicode(config=True, help="The admins' password (heliohub up generates or is given it).")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in sorted(self.admin_users):
            account = self.get_user(name)
            if account is None:
                if self.create_user(name, self.admin_password) is None:
                    raise ValueError(f"the admin account {name!r} could not be made (check UpSettings.admin_user)")
                log.info("made the admin account %s", name)
            elif not account.is_valid_password(self.admin_password):
                self.change_password(name, self.admin_password)
                log.info("the admin password of %s changed to the one heliohub up was given", name)
