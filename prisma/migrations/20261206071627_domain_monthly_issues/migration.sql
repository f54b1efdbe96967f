-- CreateTable
CREATE TABLE "domain_monthly_issues" (
    "domain_id" TEXT NOT NULL,
    "month" TIMESTAMPTZ(3) NOT NULL,
    "issued" INTEGER NOT NULL,

    CONSTRAINT "domain_monthly_issues_pkey" PRIMARY KEY ("domain_id","month")
);

