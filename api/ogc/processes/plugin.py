"""pygeoapi process plugins: they carry the process descriptions pygeoapi serves.

pygeoapi's ``describe_processes`` lists and describes them (JSON and HTML, zh/en). Execution
and jobs are served by our routes (``routes.py``; docs/processes.md says why): ``execute``
here is never reached through our URLs and refuses if something calls it directly.
"""

from __future__ import annotations

from typing import Any

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from api.ogc.processes.descriptions import PROCESSES


class _PinganProcessor(BaseProcessor):
    process_id = ""

    def __init__(self, processor_def: dict[str, Any]) -> None:
        super().__init__(processor_def, PROCESSES[self.process_id]["metadata"])

    def execute(self, data: dict[str, Any], outputs: dict[str, Any] | None = None) -> tuple[str, Any]:
        raise ProcessorExecuteError(
            f"{self.process_id} runs through POST /ogc/processes/{self.process_id}/execution"
        )


class HotspotGistarProcessor(_PinganProcessor):
    process_id = "hotspot-gistar"


class HotspotLocalMoranProcessor(_PinganProcessor):
    process_id = "hotspot-local-moran"


class KernelDensityProcessor(_PinganProcessor):
    process_id = "kernel-density"


class EmergingHotspotsProcessor(_PinganProcessor):
    process_id = "emerging-hotspots"


class IndexComputeProcessor(_PinganProcessor):
    process_id = "index-compute"


class PatrolPlanProcessor(_PinganProcessor):
    process_id = "patrol-plan"
