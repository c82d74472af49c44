"""``config_changes:``: which changes of the config itself a second person must approve.

```yaml
config_changes:
  review: production_gates        # none | production_gates | production | all
  approvers: {role: platform, count: 1}
```

A reload that changes what ``review`` names waits as a pending change until
``count`` people of the role or team other than the one who asked approve it
(four-eyes); anything else applies at once. Every reload records its diff, who
asked and why in the audit.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from interlock.domain.bounds import ApprovalCount
from interlock.spec.common import Name, Strict


class ConfigApprovers(Strict):
    """Who approves a reviewed config change: N people of a role or a team."""

    role: Name | None = None
    team: Name | None = None
    count: ApprovalCount = Field(default=1, description="How many distinct people.")

    @model_validator(mode="after")
    def _one_source(self) -> ConfigApprovers:
        if (self.role is None) == (self.team is None):
            raise ValueError("config change approvers name exactly one of role or team")
        return self


class ConfigChanges(Strict):
    """How a reload of this config is reviewed (the active config's rules apply)."""

    review: Literal["none", "production_gates", "production", "all"] = Field(
        default="none",
        description="What needs approval before a reload applies: nothing, a change of a "
        "production environment's gates, any change of a production environment, or any "
        "change at all.",
    )
    approvers: ConfigApprovers | None = Field(
        default=None, description="Who approves (never the person who asked for the reload)."
    )

    @model_validator(mode="after")
    def _approvers(self) -> ConfigChanges:
        if self.review != "none" and self.approvers is None:
            raise ValueError(f"review: {self.review} needs `approvers` (a role or team, count)")
        return self
