"""core.intake on its own: what it reads from a request, and how."""

from __future__ import annotations

import warnings

from openresponses.core import intake
from openresponses.generated import openai_models as m


def test_deprecated_request_fields_are_honoured_without_a_warning_per_read() -> None:
    request = m.CreateResponse.model_validate(
        {
            "model": "m",
            "input": "hi",
            "user": "u-1",
            "truncation": "auto",
            "prompt_cache_retention": "24h",
        }
    )

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydantic warns on every read of a deprecated field
        response = intake.initial_response(request, "m")
        hints = intake.provider_hints(request)

    echoed = response.model_dump()
    assert (echoed["user"], echoed["truncation"]) == ("u-1", "auto")
    assert hints["prompt_cache_retention"] == "24h"
