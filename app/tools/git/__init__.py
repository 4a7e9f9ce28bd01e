"""The git tools, on dulwich (git itself is never run for them).

:mod:`.repo` opens the workspace's repository and does the local operations, :mod:`.remote`
vets remotes and pushes and pulls with the operator's credentials, :mod:`.policy` holds the
``POLICY_GIT_*`` rules, and :mod:`.tools` offers it all to the model.
"""
