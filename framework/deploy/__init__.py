"""Deploy stage, what every platform shares: plan (operations), executor, package, secrets, commands.

The core never imports a cloud SDK; each platform's deployer (framework/platforms/<name>/api.py) is
imported only when that platform is deployed to (see framework/platforms/registry.py).
"""
