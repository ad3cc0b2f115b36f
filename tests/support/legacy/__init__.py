"""The command reader as it was before the bash-faithful rewrite (issues 10 and 11).

Kept only as a test oracle: the differential test checks that the new reader
agrees with it wherever it succeeded. Frozen: do not fix bugs here.
"""
