DROP TRIGGER jobs_dismissed ON pingan.jobs;
DROP FUNCTION pingan.job_dismissed();
