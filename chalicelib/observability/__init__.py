"""What sealq says about itself: metrics (EMF in Lambda, totals locally) and structured logs."""
