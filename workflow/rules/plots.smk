# Figures (results/figures/*.{png,pdf}): one rule per figure, reading only the tables it draws,
# so a style change reruns only plotting and report.trial reruns only fig3. Methods keep their
# config order (and colour) in every figure.


rule plot_accuracy:
    input:
        accuracy=rules.gather_accuracy.output[0],
    output:
        png=report(
            "results/figures/fig1_accuracy.png",
            caption="../report/fig1_accuracy.rst",
            category="Figures",
            subcategory="1 Accuracy",
        ),
        pdf="results/figures/fig1_accuracy.pdf",
    log:
        "logs/plot_accuracy/fig1_accuracy.log",
    benchmark:
        "results/benchmarks/plot_accuracy/fig1_accuracy.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        figure="accuracy",
        methods=method_names(),
    script:
        "../scripts/plot_figures.py"


rule plot_interpretability:
    input:
        summary=rules.summarise.output[0],
        intervals=rules.gather_bootstrap.output.intervals,
    output:
        png=report(
            "results/figures/fig2_interpretability.png",
            caption="../report/fig2_interpretability.rst",
            category="Figures",
            subcategory="2 Interpretability",
        ),
        pdf="results/figures/fig2_interpretability.pdf",
    log:
        "logs/plot_interpretability/fig2_interpretability.log",
    benchmark:
        "results/benchmarks/plot_interpretability/fig2_interpretability.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        figure="interpretability",
        methods=method_names(),
        confidence=config["bootstrap"]["confidence"],
    script:
        "../scripts/plot_figures.py"


rule plot_categories:
    input:
        summary=rules.summarise.output[0],
    output:
        png=report(
            "results/figures/fig3_categories.png",
            caption="../report/fig3_categories.rst",
            category="Figures",
            subcategory="3 Categories",
        ),
        pdf="results/figures/fig3_categories.pdf",
    log:
        "logs/plot_categories/fig3_categories.log",
    benchmark:
        "results/benchmarks/plot_categories/fig3_categories.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        figure="categories",
        trial=config["report"]["trial"],
        methods=method_names(),
    script:
        "../scripts/plot_figures.py"


rule plot_consistency:
    input:
        consistency=rules.consistency.output[0],
    output:
        png=report(
            "results/figures/fig4_consistency.png",
            caption="../report/fig4_consistency.rst",
            category="Figures",
            subcategory="4 Consistency",
        ),
        pdf="results/figures/fig4_consistency.pdf",
    log:
        "logs/plot_consistency/fig4_consistency.log",
    benchmark:
        "results/benchmarks/plot_consistency/fig4_consistency.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        figure="consistency",
        methods=method_names(),
    script:
        "../scripts/plot_figures.py"


rule plot_overview:
    input:
        accuracy=rules.gather_accuracy.output[0],
        summary=rules.summarise.output[0],
        consistency=rules.consistency.output[0],
        intervals=rules.gather_bootstrap.output.intervals,
    output:
        png=report(
            "results/figures/fig5_overview.png",
            caption="../report/fig5_overview.rst",
            category="Figures",
            subcategory="5 Overview",
        ),
        pdf="results/figures/fig5_overview.pdf",
    log:
        "logs/plot_overview/fig5_overview.log",
    benchmark:
        "results/benchmarks/plot_overview/fig5_overview.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        figure="overview",
        methods=method_names(),
        confidence=config["bootstrap"]["confidence"],
    script:
        "../scripts/plot_figures.py"
