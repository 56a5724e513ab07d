"""Where DaaR meets Data-Juicer: what the ops share, and what Data-Juicer's loading and executors need."""
