"""Load Pingan layers in headless QGIS 3.22 and report what QGIS saw, as JSON on stdout.

Run with Debian's system Python (python3-qgis), not the project's venv:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/clients/qgis_check.py BASE_URL OUT_DIR [USER PASSWORD]

For each collection named in PINGAN_QGIS_COLLECTIONS (default: towns,hazards): the OAPIF layer's
validity, feature count (from iterating every feature, which follows the next links) and extent;
then the collection's vector tiles as an XYZ layer (QGIS 3.22 has no OGC API Tiles client),
rendered to a PNG in OUT_DIR, with the count of non-background pixels. With USER and PASSWORD,
a Basic auth config is stored and used for every request, tiles included.

PyQGIS 3.22 segfaults in exitQgis() after layers were loaded: the script ends with os._exit.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


def main() -> int:  # noqa: C901 - one linear script
    base, out_dir = sys.argv[1].rstrip("/"), sys.argv[2]
    user, password = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QGIS_AUTH_DB_DIR_PATH"] = tempfile.mkdtemp(prefix="qgis-auth-")
    from qgis.core import (
        QgsApplication,
        QgsAuthMethodConfig,
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsMapRendererParallelJob,
        QgsMapSettings,
        QgsProject,
        QgsRectangle,
        QgsVectorLayer,
        QgsVectorTileLayer,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    app = QgsApplication([], False)
    app.initQgis()
    messages: list[str] = []
    QgsApplication.messageLog().messageReceived.connect(
        lambda msg, tag, level: messages.append(f"{tag}: {msg}")
    )
    authcfg = ""
    if user:
        am = QgsApplication.authManager()
        am.setMasterPassword("pingan-test-master", True)
        cfg = QgsAuthMethodConfig("Basic")
        cfg.setName("pingan")
        cfg.setConfig("username", user)
        cfg.setConfig("password", password)
        am.storeAuthenticationConfig(cfg)
        authcfg = cfg.id()
    report: dict = {"qgis": __import__("qgis.core").core.Qgis.QGIS_VERSION, "layers": {}}
    for cid in os.environ.get("PINGAN_QGIS_COLLECTIONS", "towns,hazards").split(","):
        uri = f"url='{base}/ogc' typename='{cid}'" + (f" authcfg='{authcfg}'" if authcfg else "")
        layer = QgsVectorLayer(uri, cid, "OAPIF")
        entry: dict = {"valid": layer.isValid()}
        if layer.isValid():
            entry["featureCount"] = layer.featureCount()
            entry["iterated"] = sum(1 for _ in layer.getFeatures())
            e = layer.extent()
            entry["extent"] = [e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()]
            entry["crs"] = layer.crs().authid()
        tiles = f"{base}/ogc/collections/{cid}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}"
        vt_uri = f"type=xyz&url={tiles}&zmin=0&zmax=16" + (f"&authcfg={authcfg}" if authcfg else "")
        vt = QgsVectorTileLayer(vt_uri, f"{cid}-tiles")
        entry["tiles_valid"] = vt.isValid()
        if vt.isValid():
            QgsProject.instance().addMapLayer(vt)
            settings = QgsMapSettings()
            settings.setLayers([vt])
            settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
            # the collection's own extent in Web Mercator, with a margin (about z11 at 800 px)
            extent = QgsRectangle(13405000, 3222000, 13455000, 3262000)
            if layer.isValid():
                to_3857 = QgsCoordinateTransform(
                    layer.crs(), QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance()
                )
                extent = to_3857.transformBoundingBox(layer.extent())
                extent.scale(1.05)
            settings.setExtent(extent)
            settings.setOutputSize(QSize(800, 640))
            settings.setBackgroundColor(QColor(255, 255, 255))
            job = QgsMapRendererParallelJob(settings)
            job.start()
            job.waitForFinished()
            image = job.renderedImage()
            path = os.path.join(out_dir, f"qgis-{cid}-tiles.png")
            image.save(path)
            white = QColor(255, 255, 255).rgb()
            drawn = sum(
                1
                for y in range(0, image.height(), 2)
                for x in range(0, image.width(), 2)
                if image.pixel(x, y) != white
            )
            entry["tile_png"] = path
            entry["drawn_pixels_sampled"] = drawn
        report["layers"][cid] = entry
    report["messages"] = messages[-20:]
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
