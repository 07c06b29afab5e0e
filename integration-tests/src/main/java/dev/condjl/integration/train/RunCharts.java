package dev.condjl.integration.train;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import javax.imageio.ImageIO;

/**
 * The picture of a training run: the loss and accuracy curves (XChart) above a routing map (Java2D) that shows, for
 * a few validation sequences, which positions each layer's three routers sent to the heavy branch, with the
 * positions that matter marked. Text models have no routing map yet: their causal attention does not report its
 * routing.
 */
public final class RunCharts {

    private static final int WIDTH = 1400;
    private static final int CHART_HEIGHT = 380;
    private static final int LEFT = 150;
    private static final int RIGHT = 30;
    private static final int ROW = 11;
    private static final int ROW_GAP = 2;
    private static final Color Q = new Color(0x1f77b4);
    private static final Color KV = new Color(0xff7f0e);
    private static final Color FF = new Color(0x2ca02c);
    private static final Color KEY = new Color(0xd62728);
    private static final Color VALUE = new Color(0x9467bd);
    private static final Color QUERY = Color.BLACK;

    private RunCharts() {}

    /** The curves of a run, filled while it trains. */
    public static final class Curve {
        private final List<double[]> train = new ArrayList<>();
        private final List<double[]> valid = new ArrayList<>();

        /**
         * Adds a training step.
         *
         * @param step steps done
         * @param loss this step's loss
         * @param smoothed the smoothed loss
         * @param gradNorm the gradient norm before clipping (NaN without clipping)
         */
        public void addTrain(int step, double loss, double smoothed, double gradNorm) {
            train.add(new double[] {step, loss, smoothed, gradNorm});
        }

        /**
         * Adds a validation point.
         *
         * @param step steps done
         * @param result the evaluation
         */
        public void addValid(int step, Evaluation.Result result) {
            valid.add(new double[] {step, result.loss(), result.accuracy()});
        }

        /**
         * The validation points.
         *
         * @return {step, loss, accuracy} rows
         */
        public List<double[]> valid() {
            return valid;
        }

        /**
         * Writes {@code metrics.csv}: one row per step, validation columns where measured.
         *
         * @param file the file
         * @throws IOException if it cannot be written
         */
        public void writeCsv(Path file) throws IOException {
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(file, StandardCharsets.UTF_8))) {
                w.println("step,loss,smoothed_loss,grad_norm,valid_loss,valid_accuracy");
                int v = 0;
                for (double[] t : train) {
                    while (v < valid.size() && valid.get(v)[0] < t[0]) {
                        v++;
                    }
                    boolean here = v < valid.size() && valid.get(v)[0] == t[0];
                    w.printf(Locale.ROOT, "%d,%.6f,%.6f,%.6f,%s,%s%n", (int) t[0], t[1], t[2], t[3],
                            here ? String.format(Locale.ROOT, "%.6f", valid.get(v)[1]) : "",
                            here ? String.format(Locale.ROOT, "%.6f", valid.get(v)[2]) : "");
                }
            }
        }
    }

    /**
     * Draws and writes the picture.
     *
     * @param png the output file
     * @param curve the run's curves
     * @param trace the routing of the shown sequences
     * @param shown the shown validation sequences
     * @param task the task (token names, marks)
     * @param config the model configuration
     * @throws IOException if the file cannot be written
     */
    public static void write(Path png, Curve curve, RoutingTrace trace, Sample shown, TrainingTask task,
            ModelConfig config) throws IOException {
        System.setProperty("java.awt.headless", "true");
        BufferedImage loss = BitmapEncoder.getBufferedImage(lossChart(curve));
        BufferedImage accuracy = BitmapEncoder.getBufferedImage(accuracyChart(curve, 1.0 / config.numClasses()));
        int layers = trace.layers().size();
        int seqHeight = 3 * layers * (ROW + ROW_GAP) + 38;
        int mapHeight = layers == 0 ? 0 : 60 + shown.batchSize() * seqHeight + 40;
        BufferedImage image = new BufferedImage(WIDTH, CHART_HEIGHT + mapHeight, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, image.getWidth(), image.getHeight());
        g.drawImage(loss, 0, 0, null);
        g.drawImage(accuracy, WIDTH / 2, 0, null);
        if (layers > 0) {
            drawRoutingMap(g, CHART_HEIGHT, trace, shown, task, config);
        }
        g.dispose();
        ImageIO.write(image, "png", png.toFile());
    }

    private static XYChart lossChart(Curve curve) {
        XYChart chart = new XYChartBuilder().width(WIDTH / 2).height(CHART_HEIGHT)
                .title("Loss").xAxisTitle("step").yAxisTitle("cross-entropy (nats)").build();
        style(chart);
        double[][] train = columns(curve.train, 0, 2);
        for (int i = 0; i < train[0].length; i++) {
            // the loss of update i is measured between step counts i-1 and i; off-integer x values also keep
            // XChart from labelling every 27th step instead of round numbers
            train[0][i] -= 0.5;
        }
        if (train[0].length > 0) {
            line(chart.addSeries("train (smoothed)", train[0], train[1]), new Color(0x1f77b4));
        }
        double[][] valid = columns(curve.valid, 0, 1);
        XYSeries v = chart.addSeries("validation", valid[0], valid[1]);
        v.setLineColor(new Color(0xd62728));
        v.setMarkerColor(new Color(0xd62728));
        v.setMarker(SeriesMarkers.CIRCLE);
        return chart;
    }

    private static XYChart accuracyChart(Curve curve, double chance) {
        XYChart chart = new XYChartBuilder().width(WIDTH / 2).height(CHART_HEIGHT)
                .title("Validation accuracy").xAxisTitle("step").yAxisTitle("accuracy").build();
        style(chart);
        chart.getStyler().setYAxisMin(0.0).setYAxisMax(1.0);
        // accuracy starts low: the top left corner stays free
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        double[][] valid = columns(curve.valid, 0, 2);
        XYSeries v = chart.addSeries("validation", valid[0], valid[1]);
        v.setLineColor(new Color(0xd62728));
        v.setMarkerColor(new Color(0xd62728));
        v.setMarker(SeriesMarkers.CIRCLE);
        double first = valid[0].length > 0 ? valid[0][0] : 0;
        double last = valid[0].length > 0 ? valid[0][valid[0].length - 1] : 1;
        XYSeries c = chart.addSeries(String.format(Locale.ROOT, "chance (%.1f%%)", 100 * chance),
                new double[] {first, last}, new double[] {chance, chance});
        line(c, Color.GRAY);
        return chart;
    }

    private static void style(XYChart chart) {
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setPlotBackgroundColor(Color.WHITE);
        chart.getStyler().setPlotBorderVisible(false);
        chart.getStyler().setXAxisDecimalPattern("#");
        chart.getStyler().setXAxisTickMarkSpacingHint(90);
    }

    private static void line(XYSeries series, Color color) {
        series.setMarker(SeriesMarkers.NONE);
        series.setLineColor(color);
        series.setLineWidth(1.5f);
    }

    private static double[][] columns(List<double[]> rows, int x, int y) {
        double[][] out = new double[2][rows.size()];
        for (int i = 0; i < rows.size(); i++) {
            out[0][i] = rows.get(i)[x];
            out[1][i] = rows.get(i)[y];
        }
        return out;
    }

    private static void drawRoutingMap(Graphics2D g, int top, RoutingTrace trace, Sample shown, TrainingTask task,
            ModelConfig config) {
        int n = shown.seqLen();
        double cell = (double) (WIDTH - LEFT - RIGHT) / n;
        Font title = new Font(Font.SANS_SERIF, Font.BOLD, 15);
        Font small = new Font(Font.SANS_SERIF, Font.PLAIN, 11);
        g.setColor(Color.BLACK);
        g.setFont(title);
        g.drawString(String.format(Locale.ROOT, "Routing map: positions sent to the heavy branch (%d layers x "
                + "q / kv / ff routers; Kq=%d, Kkv=%d, Kff=%d of n=%d)", trace.layers().size(),
                config.heavyTokensQ(), config.heavyTokensKv(), config.heavyTokensFf(), n), LEFT, top + 22);
        g.setFont(small);
        int y = top + 50;
        RoutingTrace.Router[] routers = RoutingTrace.Router.values();
        Color[] colors = {Q, KV, FF};
        for (int row = 0; row < shown.batchSize(); row++) {
            int seqTop = y;
            g.setColor(Color.BLACK);
            g.drawString(caption(shown, row, task), LEFT, y + 10);
            y += 16;
            for (int layer = 0; layer < trace.layers().size(); layer++) {
                for (int r = 0; r < routers.length; r++) {
                    g.setColor(new Color(0xf2f2f2));
                    g.fillRect(LEFT, y, WIDTH - LEFT - RIGHT, ROW);
                    g.setColor(colors[r]);
                    for (long p : trace.layers().get(layer).of(routers[r])[row]) {
                        g.fillRect(LEFT + (int) Math.floor(p * cell), y, Math.max(2, (int) Math.ceil(cell)), ROW);
                    }
                    g.setColor(Color.DARK_GRAY);
                    g.drawString("L" + layer + " " + routers[r].name().toLowerCase(Locale.ROOT), LEFT - 60,
                            y + ROW - 1);
                    y += ROW + ROW_GAP;
                }
            }
            if (shown.marks() != null) {
                drawMarks(g, shown.marks()[row], seqTop + 14, y, cell);
            }
            g.setColor(Color.DARK_GRAY);
            g.drawString("seq " + (row + 1), 10, seqTop + 30);
            y += 22;
        }
        drawLegend(g, y + 8, shown.marks() != null);
    }

    private static String caption(Sample shown, int row, TrainingTask task) {
        if (shown.marks() == null) {
            return "";
        }
        int[] m = shown.marks()[row];
        return String.format(Locale.ROOT, "key %s at %d, value %s at %d, query %s at %d",
                task.tokenLabel(shown.token(row, m[RetrievalTask.KEY])), m[RetrievalTask.KEY],
                task.tokenLabel(shown.token(row, m[RetrievalTask.VALUE])), m[RetrievalTask.VALUE],
                task.tokenLabel(shown.token(row, m[RetrievalTask.QUERY])), m[RetrievalTask.QUERY]);
    }

    /** Dashed lines through a sequence's rows at the marked positions; key and query flagged above, value below. */
    private static void drawMarks(Graphics2D g, int[] marks, int from, int to, double cell) {
        Color[] colors = {KEY, VALUE, QUERY};
        g.setStroke(new BasicStroke(1.2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {3f, 2f},
                0f));
        for (int i = 0; i < marks.length; i++) {
            int x = LEFT + (int) Math.floor((marks[i] + 0.5) * cell);
            g.setColor(colors[i]);
            g.drawLine(x, from, x, to);
            if (i == RetrievalTask.VALUE) {
                g.fillPolygon(new int[] {x - 5, x + 5, x}, new int[] {to + 7, to + 7, to}, 3);
            } else {
                g.fillPolygon(new int[] {x - 5, x + 5, x}, new int[] {from - 2, from - 2, from + 5}, 3);
            }
        }
        g.setStroke(new BasicStroke(1f));
    }

    private static void drawLegend(Graphics2D g, int y, boolean marks) {
        Object[][] items = marks
                ? new Object[][] {{Q, "q: routed query"}, {KV, "kv: routed key/value"}, {FF, "ff: heavy feed-forward"},
                    {KEY, "queried key"}, {VALUE, "its value"}, {QUERY, "query (last token)"}}
                : new Object[][] {{Q, "q: routed query"}, {KV, "kv: routed key/value"}, {FF, "ff: heavy feed-forward"}};
        int x = LEFT;
        for (Object[] item : items) {
            g.setColor((Color) item[0]);
            g.fillRect(x, y, 14, 10);
            g.setColor(Color.BLACK);
            g.drawString((String) item[1], x + 18, y + 10);
            x += 30 + g.getFontMetrics().stringWidth((String) item[1]);
        }
    }
}
