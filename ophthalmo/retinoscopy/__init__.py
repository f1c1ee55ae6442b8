"""Smartphone streak retinoscopy: optics, the printed marker frame, simulation, video → dioptres."""
