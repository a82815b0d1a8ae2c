"""`python -m moto.server` with one fix to Lambda's version numbers, for the pruning tests (issue 14).

moto 5.2 numbers a new version len(versions) + 1, so after a version is deleted (DeleteFunction with a
Qualifier) the next publish reuses a number that is still there. Lambda numbers versions in sequence
and never hands out a number twice: a new version is the highest ever published + 1
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html). Everything else is moto's.
"""

from __future__ import annotations

import copy
import sys

from moto.awslambda.models import LambdaFunction, LambdaStorage
from moto.server import main


def publish_version(self: LambdaStorage, name_or_arn: str, description: str = "") -> LambdaFunction | None:
    """moto's LambdaStorage.publish_version, numbering from a per-function counter."""
    function = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
    name = function.function_name
    if name not in self._functions or not self._functions[name]["latest"]:
        return None
    versions = self._functions[name]["versions"]
    if versions:
        if not function.code_or_config_updated:
            return versions[-1]  # nothing changed since the last publish: that version
        function.code_or_config_updated = False
    number = max([self._functions[name].get("published", 0), *(int(v.version) for v in versions)]) + 1
    self._functions[name]["published"] = number
    fn = copy.copy(self._functions[name]["latest"])
    fn.set_version(number)
    if description:
        fn.description = description
    versions.append(fn)
    self._arns[fn.function_arn] = fn
    return fn


LambdaStorage.publish_version = publish_version  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
